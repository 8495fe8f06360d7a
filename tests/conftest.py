"""Shared fixtures: toy pieces in memory and written in the MSMD layout, the real MSMD sample, and the scripts."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

from sfgym.data.msmd import write_piece  # noqa: E402
from sfgym.data.synthetic import synthetic_piece  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
MSMD_SAMPLE_SPLIT = FIXTURES / "msmd_sample"
MSMD_SAMPLE_PIECE = "Anonymous__lesgraces__lesgraces"
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str):
    """The module of ``scripts/NAME.py`` (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def one_torch_thread():
    """Torch on one thread for the test: the test machines are small and shared, and one thread is
    several times faster there than an oversubscribed two."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def toy_pieces():
    """Three small deterministic pieces of different lengths and tempi."""
    return [
        synthetic_piece("toy_a", n_onsets=20, frames_per_onset=6, seed=1),
        synthetic_piece("toy_b", n_onsets=30, frames_per_onset=9, seed=2),
        synthetic_piece("toy_c", n_onsets=25, frames_per_onset=7, px_per_onset=30, seed=3),
    ]


@pytest.fixture(scope="session")
def toy_dataset(tmp_path_factory, toy_pieces):
    """A dataset root with train/valid/test splits of toy pieces in the MSMD layout."""
    root = tmp_path_factory.mktemp("toy_dataset")
    for split, pieces in {"train": toy_pieces, "valid": toy_pieces[:1], "test": toy_pieces[1:]}.items():
        for piece in pieces:
            write_piece(root / split, piece)
    return root
