"""On local Ray: ``sfgym data build --ray`` and ``sfgym data variant --ray`` (the files of a local build, made
by Ray tasks) and ``sfgym train pretrained --ray`` (its stages as Ray tasks)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pytest

from sfgym.cli import main
from sfgym.data.dataset import BuildConfig, build_dataset
from sfgym.data.variant import build_variant

from scores import SCALE, melody_musicxml
from test_pretrained import check_stage_runner

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
CORPUS = [
    ("tiny_scale", melody_musicxml(SCALE * 2, tempo_bpm=120)),
    ("tiny_chords", melody_musicxml(SCALE[::-1] * 2, tempo_bpm=100, chord_every=2)),
]
CONFIG = BuildConfig(tempo_ratios=(0.9, 1.0))
TIMING_FIELDS = ("created", "build_seconds_this_run", "build_seconds", "seconds")
"""What a manifest records of the clock: two local builds differ there too, so these are left out of the
comparison (and only these)."""


def without_timing(value):
    """A manifest with its clock fields (:data:`TIMING_FIELDS`) left out, at any depth."""
    if isinstance(value, dict):
        return {key: without_timing(item) for key, item in value.items() if key not in TIMING_FIELDS}
    if isinstance(value, list):
        return [without_timing(item) for item in value]
    return value


def assert_same_files(local: Path, on_ray: Path) -> int:
    """Every file of the two roots byte-equal, the manifests but their clock fields; returns the files compared."""
    files = sorted(p.relative_to(local) for p in local.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(on_ray) for p in on_ray.rglob("*") if p.is_file())
    for name in files:
        if name.name == "manifest.json":
            manifests = [json.loads((root / name).read_text()) for root in (local, on_ray)]
            assert without_timing(manifests[0]) == without_timing(manifests[1])
        else:
            assert (local / name).read_bytes() == (on_ray / name).read_bytes(), name
    return len(files)


def test_without_ray_the_build_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    assert main(["data", "build", "--ray", "--max-pieces", "1", "--out", str(tmp_path / "data")]) == 1
    err = capsys.readouterr().err
    assert 'pip install -e ".[ray]"' in err and "Traceback" not in err


# ---------------------------------------------------------------------------- on local Ray
@pytest.fixture(scope="module")
def local_ray():
    """One local Ray session (2 CPUs) for the module; its workers import this checkout (and the stages they
    start, ``tests/stage_stub.py``)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_build(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("local") / "data"
    build_dataset(root, CORPUS, CONFIG, workers=1, progress=False)
    return root


@pytest.mark.slow
def test_a_build_on_ray_writes_the_files_of_a_local_build(local_ray, local_build, tmp_path):
    on_ray = build_dataset(tmp_path / "data", CORPUS, CONFIG, ray=True, progress=False)
    assert assert_same_files(local_build, on_ray) == 1 + 2 * (2 + 2 * 2)  # manifest; per score .npz, .mid, 2 × (.mid, .npy)
    assert not json.loads((on_ray / "manifest.json").read_text())["failed"]


@pytest.mark.slow
def test_a_variant_on_ray_writes_the_files_of_a_local_variant(local_ray, local_build, tmp_path):
    options = {"splits": ("train",), "soundfont": "TimGM6mb", "reverb_s": 0.3, "seed": 1, "progress": False}
    local = build_variant(local_build, tmp_path / "local", **options)
    on_ray = build_variant(local_build, tmp_path / "ray", ray=True, workers=2, **options)
    assert assert_same_files(local, on_ray) == 1 + 2 * 2 + 4 * 3  # manifest; per score .npz, .mid; per take .wav .mid .npy


# ---------------------------------------------------------------------------- sfgym train pretrained --ray
@pytest.mark.slow
def test_the_stages_on_ray_ask_for_their_share_of_the_cores_and_a_failed_one_is_named(local_ray, tmp_path, monkeypatch):
    from agents.pretrained import train as pretrained_train

    monkeypatch.setitem(pretrained_train.STAGE_MODULES, "rl", "stage_stub")  # tests/stage_stub.py: no training
    monkeypatch.setattr(pretrained_train.os, "cpu_count", lambda: 2)  # --jobs 2: one CPU a stage, as local Ray has
    check_stage_runner(lambda stages: pretrained_train._run_stages_on_ray("rl", stages, jobs=2), tmp_path)
    # each stage asks Ray for --jobs' share of the machine's cores: 6 cores / 3 jobs, 2 CPUs a stage
    asked, remote = [], local_ray.remote
    monkeypatch.setattr(local_ray, "remote", lambda **options: asked.append(options) or remote(**options))
    monkeypatch.setattr(pretrained_train.os, "cpu_count", lambda: 6)
    wide = tmp_path / "wide"
    assert len(pretrained_train._run_stages_on_ray("rl", [(["--out", str(wide)], wide)], jobs=3)) == 1
    assert asked == [{"num_cpus": 2.0}]


def test_ray_and_address_send_every_stage_to_ray(tmp_path, monkeypatch):
    from agents.pretrained import train as pretrained_train

    started = []

    def record(trainer, stages, jobs, address=None):
        started.append((trainer, len(stages), jobs, address))
        return [f"sfgym train {trainer}"] * len(stages)

    monkeypatch.setattr(pretrained_train, "_run_stages_on_ray", record)
    parser = argparse.ArgumentParser()
    pretrained_train.add_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path), "--follower", "ppo", "--seeds", "0,1", "--jobs", "2",
                              "--data", str(tmp_path), "--address", "HEAD:6379"])
    with pytest.raises(FileNotFoundError):  # no PPO ran, so no best.json: the stages were all Ray's
        pretrained_train._model_to_ship(args, {}, tmp_path)
    assert started == [("trunk", 1, 2, "HEAD:6379"), ("rl", 2, 2, "HEAD:6379")]
