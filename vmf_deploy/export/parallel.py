"""Run several exports, in this process or side by side in worker processes (``vmf-export --jobs``).

Most of an export is single-threaded Python (graph capture, ExecuTorch's passes), so two
exports on a 2-core machine take about as long as the slower one. Each worker process runs
one export and exits (its memory is returned), and reports its steps through a queue, so the
console shows them as they finish. The slow targets start first, so that a short export fills
the gap at the end instead of a long one starting last; results come back in the order the
exports were asked. Workers start with ``OMP_WAIT_POLICY=PASSIVE`` (:func:`passive_openmp_waits`).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from vmf_deploy.export.errors import ExportError
from vmf_deploy.export.pipeline import ExportResult, export_model
from vmf_deploy.export.targets import TARGETS

Cell = tuple[str, str]
"""One export: ``(variant, target)``."""
StepEvent = Callable[[Cell, str, "float | None"], None]
"""``(cell, step, None)`` when a step starts, ``(cell, step, seconds)`` when it ends."""

JOB_MEMORY_BYTES = 3 * 1024**3
"""Memory set aside per parallel export: the largest measured peak (2.1 GiB, 5g to ExecuTorch at 64 frames,
``benchmarks/export_matrix.py``) plus headroom."""

_EVENTS: Any = None  # the worker process's end of the step queue


@dataclass
class ExportOutcome:
    """One export's result or its one-paragraph error, with its wall time and the peak memory of its process.

    ``peak_rss_mib`` is the peak of the process that ran it: of this export alone in a worker,
    of everything so far when run in this process.
    """

    cell: Cell
    result: ExportResult | None
    error: str | None
    seconds: float
    peak_rss_mib: float


def default_jobs(exports: int) -> int:
    """How many exports to run at once: one per core, as many as the free memory allows, at most ``exports``."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(exports, cores, _available_memory() // JOB_MEMORY_BYTES))


def _available_memory() -> int:
    """Bytes the kernel can give without swapping (``MemAvailable``: free plus reclaimable cache)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return JOB_MEMORY_BYTES


@contextmanager
def passive_openmp_waits() -> Iterator[None]:
    """Processes started within the block get ``OMP_WAIT_POLICY=PASSIVE``, unless the environment names a policy.

    An export runs many short torch ops between stretches of Python. By default torch's OpenMP threads
    spin after each op, on the core the other export's Python thread needs: two int8 ExecuTorch exports of
    560m side by side took 249 s, and 167 s with passive waits (2-core AMD EPYC Zen 3, 2026-12-07,
    ``benchmarks/parallel_exports.py``).
    The variable is read when a process loads OpenMP, so it is set here, before workers start.
    """
    if "OMP_WAIT_POLICY" in os.environ:
        yield
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        yield
    finally:
        os.environ.pop("OMP_WAIT_POLICY", None)


def _run_one(cell: Cell, options: dict, on_step: StepEvent | None) -> ExportOutcome:
    """Export one cell; an error becomes the outcome's message, never an exception."""
    progress = None if on_step is None else (lambda step, seconds: on_step(cell, step, seconds))
    start = time.perf_counter()
    result, error = None, None
    try:
        result = export_model(cell[0], cell[1], progress=progress, **options)
    except ExportError as e:
        error = str(e)
    except Exception as e:  # a bug, not a user error: still one paragraph, no traceback
        error = (f"unexpected {type(e).__name__} while exporting {cell[0]} to {cell[1]}: {e}. This is a bug in "
                 "vmf-export: please report it with the command line you ran.")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return ExportOutcome(cell, result, error, time.perf_counter() - start, peak)


def _worker_init(events: Any) -> None:
    global _EVENTS
    _EVENTS = events


def _worker_run(cell: Cell, options: dict) -> ExportOutcome:
    return _run_one(cell, options, lambda c, step, seconds: _EVENTS.put((c, step, seconds)))


def run_exports(cells: list[Cell], options: dict, jobs: int, on_step: StepEvent | None = None,
                processes: bool | None = None, cell_options: Sequence[dict] | None = None) -> list[ExportOutcome]:
    """Export every cell with ``export_model(variant, target, **options)``; ``jobs`` at a time.

    Args:
        cells: the ``(variant, target)`` exports, in the order results are returned. A cell may
            appear more than once, with different ``cell_options``.
        options: keyword arguments of :func:`export_model` shared by all (``out_dir``, ``frames``, ...).
        jobs: exports at once; above 1 they run in worker processes.
        on_step: called in this process for every step start and end of every export.
        processes: force worker processes (True, even for one job: each export then has its own
            process and memory peak) or this process (False); default: processes when ``jobs > 1``.
        cell_options: one dict per cell, laid over ``options`` for that export (its own ``out_dir``,
            ``precision``, ``recipe_overrides``, ...).
    """
    if cell_options is not None and len(cell_options) != len(cells):
        raise ValueError(f"cell_options has {len(cell_options)} entries for {len(cells)} cells")
    per_cell = [{**options, **extra} for extra in (cell_options or [{}] * len(cells))]
    if not (processes if processes is not None else jobs > 1 and len(cells) > 1):
        return [_run_one(cell, opts, on_step) for cell, opts in zip(cells, per_cell, strict=True)]
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    outcomes: dict[int, ExportOutcome] = {}
    with passive_openmp_waits(), ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=context,
                                                     initializer=_worker_init, initargs=(events,),
                                                     max_tasks_per_child=1) as pool:
        longest_first = sorted(range(len(cells)), key=lambda i: not getattr(TARGETS.get(cells[i][1]), "slow", False))
        pending: dict[Future, int] = {pool.submit(_worker_run, cells[i], per_cell[i]): i for i in longest_first}
        while pending:
            done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(events, on_step)
            for future in done:
                index = pending.pop(future)
                try:
                    outcomes[index] = future.result()
                except BrokenProcessPool:
                    variant, target = cells[index]
                    outcomes[index] = ExportOutcome(cells[index], None, f"the process exporting {variant} to {target} "
                                                    "died (killed, most likely out of memory): rerun with --jobs 1",
                                                    0.0, 0.0)
        _drain(events, on_step)
    return [outcomes[i] for i in range(len(cells))]


def _drain(events: Any, on_step: StepEvent | None) -> None:
    """Hand every queued step event to ``on_step``."""
    while True:
        try:
            cell, step, seconds = events.get_nowait()
        except queue.Empty:
            return
        if on_step is not None:
            on_step(tuple(cell), step, seconds)
