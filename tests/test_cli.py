"""The command line itself: version, help texts and the follower listing."""

from __future__ import annotations

import argparse

import pytest

from agents.baselines import BASELINES
from sfgym import __version__
from sfgym.cli import build_parser, main


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"sfgym {__version__}"


@pytest.mark.parametrize("command", ["evaluate", "render"])
def test_help_lists_every_baseline(command, capsys) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for name in BASELINES:
        assert name in text, f"{command} --help does not list {name}"


def test_agents_lists_baselines_checkpoint_kinds_and_runs(tmp_path, capsys) -> None:
    (tmp_path / "lstm").mkdir()
    (tmp_path / "lstm" / "best.pt").write_bytes(b"")
    (tmp_path / "ppo").mkdir()
    (tmp_path / "ppo" / "best_model.zip").write_bytes(b"")
    assert main(["agents", "--runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name, cls in BASELINES.items():
        assert any(line.split()[:1] == [name] and cls.__doc__.split(".")[0] in line for line in out.splitlines())
    assert ".pt" in out and ".zip" in out
    assert str(tmp_path / "lstm" / "best.pt") in out and str(tmp_path / "ppo" / "best_model.zip") in out


def _all_parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _all_parsers(sub)


def test_no_parser_takes_an_abbreviated_option(capsys) -> None:
    """argparse would take ``--score`` for ``--score-speed`` (any unambiguous prefix): no sfgym parser does."""
    assert all(not parser.allow_abbrev for parser in _all_parsers(build_parser()))
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--agents", "oracle", "--out", "results", "--score", "70"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --score 70" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["follow", "take.wav", "--piece", "p", "--score-s", "70"])
    assert "unrecognized arguments: --score-s 70" in capsys.readouterr().err
