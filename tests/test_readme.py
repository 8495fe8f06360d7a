"""The README and docs/ stay true: the quick tour's runnable commands run, the README stays short, no file names a
development machine's folders, and every relative link points to a file that exists.

Runnable blocks are the README's code blocks right after a line ``<!-- readme-test: run -->``: in a ``bash``
block every line is an ``sfgym`` command (``# ...`` comments allowed), run as ``python -m sfgym.cli``; a
``python`` block is run as a script. Both run in a fresh folder in which ``tests/`` is the repository's (so
``tests/fixtures/msmd_sample`` resolves), with ``$SFGYM_DATA_DIR`` pointing at an empty folder, so nothing
builds the default dataset. The musician's placeholders ``my_piece.musicxml`` and ``recording.wav`` are stood in
for by the MSMD sample's score and a few seconds of its performance, synthesized.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SAMPLE = ROOT / "tests" / "fixtures" / "msmd_sample"
SAMPLE_PIECE = "Anonymous__lesgraces__lesgraces"
MARKER = "<!-- readme-test: run -->"
MAX_README_LINES = 250
STAND_IN_SECONDS = 4.0
COMMAND_TIMEOUT_S = 120


def runnable_blocks(text: str) -> list[tuple[str, str, int]]:
    """``(language, code, line number)`` of every fenced block right after the marker."""
    lines = text.splitlines()
    blocks = []
    for index, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        fence = index + 1
        if fence >= len(lines) or not lines[fence].startswith("```"):
            raise AssertionError(f"README.md:{index + 1}: {MARKER} is not followed by a code block")
        language = lines[fence][3:].strip()
        end = next(i for i in range(fence + 1, len(lines)) if lines[i].startswith("```"))
        blocks.append((language, "\n".join(lines[fence + 1:end]), fence + 1))
    return blocks


BLOCKS = runnable_blocks(README.read_text(encoding="utf-8"))
COMMANDS = [(line_no + 1 + offset, line.strip())
            for language, code, line_no in BLOCKS if language == "bash"
            for offset, line in enumerate(code.splitlines()) if line.strip() and not line.strip().startswith("#")]
SNIPPETS = [(line_no, code) for language, code, line_no in BLOCKS if language == "python"]


def test_readme_marks_runnable_blocks():
    assert {language for language, _, _ in BLOCKS} <= {"bash", "python"}
    assert len(COMMANDS) >= 4 and len(SNIPPETS) >= 2, "the quick tour lost its runnable commands"
    for line_no, command in COMMANDS:
        assert command.split()[0] == "sfgym", f"README.md:{line_no}: a runnable bash line must be an sfgym command"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder to run the tour in: ``tests`` links to the repository's, the placeholders stand in."""
    import soundfile

    from sfgym.data.synth import synthesize_midi

    folder = tmp_path_factory.mktemp("readme")
    (folder / "tests").symlink_to(ROOT / "tests", target_is_directory=True)
    # my_piece.musicxml: the MSMD sample's score (any score file `sfgym follow --score` takes will do).
    (folder / "my_piece.npz").symlink_to(SAMPLE / "score" / f"{SAMPLE_PIECE}.npz")
    rate = 22050
    samples = synthesize_midi(SAMPLE / "performance" / f"{SAMPLE_PIECE}.mid", sample_rate=rate)
    soundfile.write(folder / "recording.wav", samples[: int(STAND_IN_SECONDS * rate)], rate)
    return folder


def stand_in(text: str) -> str:
    return text.replace("my_piece.musicxml", "my_piece.npz")


def run_env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["SFGYM_DATA_DIR"] = str(workdir / "no-default-dataset")  # never built: a command that needs it fails
    env.update(SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy", MPLBACKEND="Agg")
    return env


def check(result: subprocess.CompletedProcess, what: str) -> None:
    assert result.returncode == 0, f"{what} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


@pytest.mark.slow
@pytest.mark.parametrize("line_no, command", COMMANDS, ids=[f"README.md:{n}" for n, _ in COMMANDS])
def test_readme_command_runs(workdir, line_no, command):
    argv = shlex.split(stand_in(command), comments=True)
    result = subprocess.run([sys.executable, "-m", "sfgym.cli", *argv[1:]], cwd=workdir, env=run_env(workdir),
                            capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    check(result, f"README.md:{line_no}: {command}")
    assert not (workdir / "no-default-dataset").exists(), f"README.md:{line_no} built the default dataset"


@pytest.mark.slow
@pytest.mark.parametrize("line_no, code", SNIPPETS, ids=[f"README.md:{n}" for n, _ in SNIPPETS])
def test_readme_python_snippet_runs(workdir, line_no, code):
    script = workdir / f"snippet_{line_no}.py"
    script.write_text(stand_in(code), encoding="utf-8")
    result = subprocess.run([sys.executable, script.name], cwd=workdir, env=run_env(workdir),
                            capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    check(result, f"the Python snippet at README.md:{line_no}")


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines (at most {MAX_README_LINES}: the rest goes to docs/)"


def test_readme_keeps_the_ci_test_command():
    """`.ci/run` reads the test command as the first line of the bash block after ``**Run the tests**``."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("**Run the tests**"))
    fence = next(i for i in range(start, len(lines)) if lines[i] == "```bash")
    assert "python -m pytest" in lines[fence + 1]


def tracked_text_files() -> list[Path]:
    try:
        listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    suffixes = {".md", ".py", ".yaml", ".yml", ".json", ".toml"}
    return [ROOT / name for name in listed.splitlines()
            if Path(name).suffix in suffixes and (ROOT / name).is_file()]


# A development machine's folders: anything under /root or /work, runs/data/results folders under /tmp or the home
# directory. Not: system paths such as /usr/share/sounds/sf2/..., documented defaults such as ~/.cache/sfgym/...,
# or a library's own cache folder named in a docstring (/tmp/music21).
DEV_PATH = re.compile(r"(?<![\w.~-])(/root/|/work/|/tmp/(runs|data|results|out|sfgym)\b|~/(runs|data|results)\b)")


def test_no_development_machine_paths():
    this_file = Path(__file__).resolve()
    found = []
    for path in tracked_text_files():
        if path.resolve() == this_file:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            match = DEV_PATH.search(line)
            if match:
                found.append(f"{path.relative_to(ROOT)}:{number}: {match.group(0)!r} in {line.strip()[:120]}")
    assert not found, "absolute paths of a development machine:\n" + "\n".join(found)


def test_dev_path_pattern():
    for bad in ("--data /work/data/unseen-piano", "/root/runs/x", "--out /tmp/runs/s1", "~/runs/lstm"):
        assert DEV_PATH.search(bad), bad
    for fine in ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "~/.cache/sfgym/default-v1", "(``/tmp/music21``)",
                 "runs/pretrained/data/default-human", "data/unseen-piano", "https://github.com/CPJKU/vienna4x22"):
        assert not DEV_PATH.search(fine), fine


LINK = re.compile(r"(?<!\\)\[[^\]]*\]\(([^)\s]+)\)")


def doc_pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings."""
    found = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def test_relative_links_point_to_files():
    broken = []
    for page in doc_pages():
        text = page.read_text(encoding="utf-8")
        text = re.sub(r"```.*?```", "", text, flags=re.S)  # not in code blocks
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            destination = (page.parent / file_part).resolve() if file_part else page
            if not destination.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no {file_part})")
            elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no heading #{anchor})")
    assert not broken, "broken links:\n" + "\n".join(broken)
