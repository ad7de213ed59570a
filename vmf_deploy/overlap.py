"""Overlapped prediction over many videos: the next videos decode while the model runs on the current one.

Decoding (FFmpeg inside OpenCV) and preprocessing (numpy) release the GIL, and so do
onnxruntime's and PyTorch's ``run``: decoder threads then run truly alongside inference in the
calling thread. At most ``prefetch`` clips wait decoded or decoding ahead of the model (a
bounded queue: a 560m clip is 23 MB), and results come back in input order. Each video's
outcome is its :class:`~vmf_deploy.predict.Prediction` or the :class:`~vmf_deploy.video.VideoError`
/ :class:`~vmf_deploy.predict.InferenceError` it raised, exactly as :meth:`Predictor.predict`
would have, so one bad file never stops the batch.

ExecuTorch's pybindings hold the GIL during ``execute`` (``benchmarks/predict_throughput.py``
measures it), so with ``.pte`` artifacts decoding overlaps inference only inside FFmpeg and numpy
calls; the Python loop between frames waits for the model.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from .predict import InferenceError, Prediction, Predictor
from .video import Clip, VideoError

DEFAULT_PREFETCH = 2
"""Clips decoded ahead of the model by default: one in flight is enough to hide decoding, two absorb jitter."""
DEFAULT_DECODERS = 2
"""Decoding threads by default: decoding a 64-frame clip takes about 6x the 560m model's inference, so
one decoder bounds throughput; two gave 1.37-1.54x the serial loop on a quiet 2-core VM, one 0.87-1.10x
(``benchmarks/predict_throughput.py``)."""


def predict_overlapped(predictor: Predictor, videos: Sequence[str | Path], topk: int = 5,
                       allow_partial: bool = False, prefetch: int = DEFAULT_PREFETCH,
                       decoders: int = DEFAULT_DECODERS) -> Iterator[tuple[str, Prediction | VideoError | InferenceError]]:
    """Yield ``(video, prediction or per-file error)`` for every video, in input order.

    ``prefetch`` clips at most are decoded ahead of the model by ``decoders`` threads; ``prefetch=0``
    is the serial loop (decode, then infer, one video at a time). Errors other than
    :class:`VideoError` and :class:`InferenceError` propagate, as from :meth:`Predictor.predict`.
    """
    if prefetch < 0 or decoders < 1:
        raise ValueError(f"prefetch must be >= 0 and decoders >= 1, got prefetch={prefetch}, decoders={decoders}")
    if prefetch == 0 or len(videos) < 2:
        for video in videos:
            yield str(video), _outcome(predictor, lambda v=video: predictor.read(v, allow_partial), video, topk)
        return
    pool = ThreadPoolExecutor(max_workers=decoders, thread_name_prefix="vmf-decode")
    pending: deque[tuple[str | Path, Future[Clip]]] = deque()
    try:
        for video in videos:
            pending.append((video, pool.submit(predictor.read, video, allow_partial)))
            if len(pending) > prefetch:
                done, future = pending.popleft()
                yield str(done), _outcome(predictor, future.result, done, topk)
        while pending:
            done, future = pending.popleft()
            yield str(done), _outcome(predictor, future.result, done, topk)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _outcome(predictor: Predictor, get_clip: Callable[[], Clip], video: str | Path,
             topk: int) -> Prediction | VideoError | InferenceError:
    """The prediction for one video whose clip ``get_clip()`` returns, or the per-file error it raised."""
    try:
        return predictor.classify(get_clip(), video, topk)
    except (VideoError, InferenceError) as e:
        return e
