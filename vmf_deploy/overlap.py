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
from concurrent.futures import Future, ThreadPoolExecutor, wait
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
    is the serial loop (decode, then infer, one video at a time). A backend with an async queue
    (``predictor.runner.in_flight`` > 1, OpenVINO compiled for throughput) gets that many clips
    in flight at once. Errors other than :class:`VideoError` and :class:`InferenceError` propagate,
    as from :meth:`Predictor.predict`.
    """
    if prefetch < 0 or decoders < 1:
        raise ValueError(f"prefetch must be >= 0 and decoders >= 1, got prefetch={prefetch}, decoders={decoders}")
    if prefetch == 0 or len(videos) < 2:
        for video in videos:
            yield str(video), _settle(lambda v=video: predictor.predict(v, topk, allow_partial))
        return
    depth = max(1, predictor.runner.in_flight)
    pool = ThreadPoolExecutor(max_workers=decoders, thread_name_prefix="vmf-decode")
    decoding: deque[tuple[str | Path, Future[Clip]]] = deque()
    running: deque[tuple[str | Path, Future[Prediction]]] = deque()
    try:
        for video in videos:
            decoding.append((video, pool.submit(predictor.read, video, allow_partial)))
            if len(decoding) > prefetch:
                running.append(_start(predictor, *decoding.popleft(), topk))
                if len(running) >= depth:
                    done, future = running.popleft()
                    yield str(done), _settle(future.result)
        while decoding:
            running.append(_start(predictor, *decoding.popleft(), topk))
            if len(running) >= depth:
                done, future = running.popleft()
                yield str(done), _settle(future.result)
        while running:
            done, future = running.popleft()
            yield str(done), _settle(future.result)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        wait([future for _, future in running])  # a consumer that stopped early leaves nothing running in the backend


def _start(predictor: Predictor, video: str | Path, clip: Future[Clip],
           topk: int) -> tuple[str | Path, Future[Prediction]]:
    """Hand a decoded clip to the model: ``(video, the future of its prediction)``; a decoding error is that future's."""
    try:
        return video, predictor.submit(clip.result(), video, topk)
    except VideoError as e:
        failed: Future[Prediction] = Future()
        failed.set_exception(e)
        return video, failed


def _settle(outcome: Callable[[], Prediction]) -> Prediction | VideoError | InferenceError:
    """The prediction ``outcome()`` returns, or the per-file error it raised."""
    try:
        return outcome()
    except (VideoError, InferenceError) as e:
        return e
