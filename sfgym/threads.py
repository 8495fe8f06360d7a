"""How many threads torch (and the math libraries under it) may use while following.

A follower steps one frame at a time: a tiny network's matrix products are far too small to gain from
several threads, and on a busy machine a thread pool per process oversubscribes the cores (a small LSTM
measured 40-116 ms per frame with torch's default threads on a shared 2-core machine, 0.4 ms with one).
``sfgym evaluate``, ``follow`` and ``render`` therefore run torch on :data:`DEFAULT_TORCH_THREADS` thread
per process unless ``--torch-threads`` says otherwise.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator

DEFAULT_TORCH_THREADS = 1
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
"""Read by torch and the BLAS libraries when they load; set too, for a torch imported later."""


def add_torch_threads_argument(parser) -> None:
    """The ``--torch-threads N`` option of the commands that follow."""
    parser.add_argument("--torch-threads", type=int, default=DEFAULT_TORCH_THREADS, metavar="N",
                        help=f"threads torch may use per process (default {DEFAULT_TORCH_THREADS}: a follower's "
                        "per-frame work is too small to share, and more threads oversubscribe a busy machine)")


def check_threads(threads: int) -> int:
    """``threads`` if it is a positive int, else ValueError."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"torch threads (--torch-threads) must be a positive integer, got {threads!r}")
    return threads


def set_process_threads(threads: int) -> None:
    """For a fresh (worker) process: ``threads`` threads for torch, whether it is loaded yet or not."""
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Within the block torch uses ``threads`` threads (also if it is first imported in it); restored after."""
    check_threads(threads)
    saved_variables = {variable: os.environ.get(variable) for variable in THREAD_VARIABLES}
    torch = sys.modules.get("torch")
    saved_threads = torch.get_num_threads() if torch is not None else None
    set_process_threads(threads)
    try:
        yield
    finally:
        for variable, value in saved_variables.items():
            if value is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = value
        if saved_threads is not None:
            torch.set_num_threads(saved_threads)


__all__ = ["DEFAULT_TORCH_THREADS", "add_torch_threads_argument", "check_threads", "set_process_threads",
           "torch_threads"]
