"""Batches of ``(clips, labels)`` made ahead of the model, in a background thread or worker processes.

By default one background thread loads ``prefetch`` batches ahead, in order. ``workers`` > 0
loads them in that many processes instead, forked where the platform can (as
``torch.utils.data.DataLoader`` does, so a script needs no ``__main__`` guard), running only
numpy and OpenCV code. On the 2-core machine one worker process was no faster than the thread
(560m, 16 frames of 48², batch 32: 45.5 vs 48.9 clips/s, 2026-12-03): the second core is the
model's. Processes pay off where cores are spare and decoding is heavy.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import torch

from ..datasets import load_batch

Batch = tuple[torch.Tensor, torch.Tensor, list[int]]


def _process_context() -> multiprocessing.context.BaseContext:
    """``fork`` where available (Linux, macOS), else ``spawn``."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


class BatchLoader:
    """Loads batches of one source; ``workers`` = 0 loads in one background thread of this process.

    Use as a context manager, or call :meth:`close`: the worker processes live until then, so
    that a run pays their start-up once, not once per epoch.
    """

    def __init__(self, source, workers: int = 0, prefetch: int = 2) -> None:
        self.source, self.prefetch = source, max(prefetch, 1)
        self.copies = workers > 0  # worker processes load a copy of the source
        self.pool: Executor = (ProcessPoolExecutor(workers, mp_context=_process_context())
                               if workers > 0 else ThreadPoolExecutor(1, thread_name_prefix="vmf-batches"))

    def __enter__(self) -> "BatchLoader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (pending batches are dropped)."""
        self.pool.shutdown(wait=True, cancel_futures=True)

    def batches(self, order: list[int], batch_size: int, epoch: int = 0, drop_last: bool = False) -> Iterator[Batch]:
        """Yield ``(clips (B,3,T,H,W), labels (B,), indices)`` of the source in ``order``.

        Clips the source cannot load (unreadable videos) are left out of their batch and counted
        in the source's ``skipped``; an exception in a worker is raised here.
        """
        chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        if drop_last and chunks and len(chunks[-1]) < batch_size:
            chunks.pop()
        pending: deque[Future] = deque()
        try:
            for chunk in chunks:
                pending.append(self.pool.submit(load_batch, self.source, chunk, epoch))
                if len(pending) > self.prefetch:
                    yield from self._collect(pending.popleft())
            while pending:
                yield from self._collect(pending.popleft())
        finally:
            for future in pending:
                future.cancel()

    def _collect(self, future: Future) -> Iterator[Batch]:
        loaded, skipped = future.result()
        if self.copies:
            self.source.skipped.items.extend(skipped)
        if loaded:
            clips = torch.from_numpy(np.stack([clip for _, clip, _ in loaded]))
            labels = torch.tensor([label for _, _, label in loaded], dtype=torch.long)
            yield clips, labels, [i for i, _, _ in loaded]


def iterate_batches(source, order: list[int], batch_size: int, epoch: int = 0) -> Iterator[Batch]:
    """Every batch of ``source`` in ``order``, loaded one batch ahead in a background thread."""
    with BatchLoader(source, workers=0) as loader:
        yield from loader.batches(order, batch_size, epoch)
