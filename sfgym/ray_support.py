"""Ray, where sfgym uses it (``sfgym sweep``, ``sfgym data build --ray``, ``sfgym data variant --ray``), and
:func:`map_unordered`: one worker function over many jobs, in a local process pool or as Ray tasks.

Ray is an optional extra (``pip install -e ".[ray]"``): it is imported only here and only when a command
asks for it (:func:`import_ray`), so that every other command works without it and does not pay its
import (~1 s).
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Callable, Iterator, Sequence, TypeVar

T = TypeVar("T")

INSTALL_HINT = 'pip install -e ".[ray]"'


class RayUnavailable(RuntimeError):
    """Ray is not installed: the message says how to install it."""


def import_ray(purpose: str = "this command runs on Ray", tune: bool = False):
    """``ray`` (and ``ray.tune`` with ``tune``: a tuple of both), imported here only; without Ray a
    :class:`RayUnavailable` saying ``purpose`` and how to install it."""
    try:
        import ray

        if tune:
            from ray import tune as ray_tune
    except ImportError as error:
        raise RayUnavailable(f"{purpose}, which is not installed ({error}); install it with: {INSTALL_HINT}") from error
    return (ray, ray_tune) if tune else ray


def connect_ray(ray, address: str | None = None) -> None:
    """Join the cluster at ``address`` (``auto``, ``HOST:6379``), or start local Ray on all this machine's
    CPUs, unless this process already holds a Ray session (a test's, a caller's); Ray's own logging and
    dashboard stay off, so that the command's output is its own."""
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False, include_dashboard=False, configure_logging=False)


def on_one_blas_thread(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` with numpy's BLAS on one thread. A worker is one of many side by side, so more
    threads would only compete; and BLAS sums in another order on another number of threads (the
    spectrogram's filterbank product differs in its last bits), so one thread everywhere makes a piece's
    files the same bytes whichever pool, machine or Ray worker made them."""
    from threadpoolctl import threadpool_limits  # here: only workers need it

    with threadpool_limits(limits=1, user_api="blas"):
        return function(*args)


def map_unordered(function: Callable[..., T], jobs: Sequence[tuple], *, workers: int | None = None,
                  ray: bool = False, ray_address: str | None = None) -> Iterator[tuple[int, T]]:
    """``(index, function(*jobs[index]))`` for every job, as each finishes: in a local process pool of
    ``workers`` (default: the CPU count), or with ``ray`` as one Ray task of one CPU per job, at most
    ``workers`` at a time (default: as the cluster's CPUs allow). The dataset builders call their worker
    through this, so that a Ray build runs the very code of a local one (each job :func:`on_one_blas_thread`). Raises :class:`RayUnavailable`
    with ``ray`` where Ray is not installed."""
    if ray:
        yield from _map_on_ray(function, jobs, workers, ray_address)
        return
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        futures = {pool.submit(on_one_blas_thread, function, *job): index for index, job in enumerate(jobs)}
        for future in as_completed(futures):
            yield futures[future], future.result()


def _map_on_ray(function: Callable[..., T], jobs: Sequence[tuple], workers: int | None,
                address: str | None) -> Iterator[tuple[int, T]]:
    """:func:`map_unordered` on Ray: tasks submitted ``workers`` ahead (all, without a limit: Ray queues
    them for the CPUs it has), each result taken as it is ready."""
    ray = import_ray("--ray runs on Ray")
    connect_ray(ray, address)
    task = ray.remote(num_cpus=1)(on_one_blas_thread)
    pending: dict[Any, int] = {}
    waiting = iter(enumerate(jobs))
    limit = workers or len(jobs)
    for index, job in itertools.islice(waiting, limit):
        pending[task.remote(function, *job)] = index
    while pending:
        [ready], _ = ray.wait(list(pending), num_returns=1)
        index = pending.pop(ready)
        for next_index, job in itertools.islice(waiting, 1):
            pending[task.remote(function, *job)] = next_index
        yield index, ray.get(ready)


__all__ = ["INSTALL_HINT", "RayUnavailable", "connect_ray", "import_ray", "map_unordered", "on_one_blas_thread"]
