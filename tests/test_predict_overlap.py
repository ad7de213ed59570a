"""Overlapped vmf-predict: the next videos decode during inference, results keep input order, per-file
errors keep their kinds, and the predictions equal the serial loop's."""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest
import video_factory as vf

from vmf_deploy.cli.predict import EXIT_USAGE, EXIT_VIDEO_FAILED, main
from vmf_deploy.overlap import predict_overlapped
from vmf_deploy.predict import Predictor
from vmf_deploy.video import VideoError

SEEDED = ["--variant", "560m", "--frames", "4"]


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Five videos in a fixed order: good ones with a truncated file and a fake one among them."""
    d = tmp_path_factory.mktemp("overlap")
    vf.write_video(d / "a.avi", 40, (96, 64))
    vf.write_video(d / "b.mp4", 30, (64, 96))
    vf.truncate(d / "a.avi", d / "c_cut.avi", 0.4)
    vf.write_video(d / "d.mp4", 24, (128, 72))
    (d / "e_fake.mp4").write_text("not a video\n" * 10)
    vf.write_video(d / "f.avi", 16, (80, 60))
    return [str(d / name) for name in ("a.avi", "c_cut.avi", "b.mp4", "e_fake.mp4", "d.mp4", "f.avi")]


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.from_variant("560m", frames=4, threads=1)  # one intra-op thread: decoding gets the other core


def outcomes(predictor: Predictor, videos: list[str], **kw) -> list[tuple[str, object]]:
    return list(predict_overlapped(predictor, videos, topk=5, **kw))


@pytest.mark.parametrize("prefetch, decoders", [(1, 1), (3, 2)])
def test_order_errors_and_top5_equal_the_serial_loop(predictor, batch, prefetch, decoders):
    serial = []
    for video in batch:
        try:
            serial.append(predictor.predict(video))
        except VideoError as e:
            serial.append(e)
    got = outcomes(predictor, batch, prefetch=prefetch, decoders=decoders)
    assert [video for video, _ in got] == batch
    for (_, outcome), expected in zip(got, serial):
        assert type(outcome) is type(expected)
        if isinstance(expected, VideoError):
            assert (outcome.kind, outcome.reason) == (expected.kind, expected.reason)
        else:
            assert outcome.top == expected.top
            np.testing.assert_array_equal(outcome.logits, expected.logits)
    assert [o.kind for _, o in got if isinstance(o, VideoError)] == ["truncated", "not-a-video"]


def test_video_errors_survive_pickling():
    """Worker processes (and Ray) send VideoErrors back pickled: kind, path and reason must arrive intact."""
    error = pickle.loads(pickle.dumps(VideoError("truncated", "/v/a.mp4", "cut short; re-download it")))
    assert (error.kind, error.path, error.reason, str(error)) == ("truncated", "/v/a.mp4", "cut short; re-download it",
                                                                 "/v/a.mp4: cut short; re-download it")


def test_serial_mode_is_the_plain_loop(predictor, batch):
    got = outcomes(predictor, batch[:3], prefetch=0)
    assert [type(o).__name__ for _, o in got] == ["Prediction", "VideoError", "Prediction"]


def test_next_video_decodes_while_the_model_runs(predictor, batch):
    """Handing the first clip to the model waits until the second video is being read: only overlap lets it go on."""
    second_started = threading.Event()
    waited: list[bool] = []
    read, submit = predictor.read, predictor.submit

    class Probe(Predictor):
        def read(self, video, allow_partial=False):
            if video == batch[2]:
                second_started.set()
            return read(video, allow_partial)

        def submit(self, clip, video, topk=5):
            if video == batch[0]:
                waited.append(second_started.wait(timeout=60))
            return submit(clip, video, topk)

    probe = Probe(predictor.runner, predictor.spec, predictor.labels, predictor.model_info)
    outcomes(probe, [batch[0], batch[2]], prefetch=1)
    assert waited == [True]


def test_queue_is_bounded_by_prefetch(predictor, batch):
    started: list[str] = []
    read = predictor.read

    class Counting(Predictor):
        def read(self, video, allow_partial=False):
            started.append(video)
            return read(video, allow_partial)

    counting = Counting(predictor.runner, predictor.spec, predictor.labels, predictor.model_info)
    results = predict_overlapped(counting, batch, prefetch=2)
    next(results)
    assert len(started) <= 3  # the video being classified and two ahead
    results.close()  # stops the decoders; nothing is left running
    assert len(started) <= 4


def test_bad_prefetch_is_refused(predictor):
    with pytest.raises(ValueError, match="prefetch must be >= 0"):
        next(predict_overlapped(predictor, ["x.mp4"], prefetch=-1))


def test_cli_progress_bar_only_when_asked(batch, capsys):
    assert main([*batch[:2], *SEEDED]) == EXIT_VIDEO_FAILED
    quiet = capsys.readouterr()
    assert "predicted" not in quiet.err and "1 of 2 videos predicted, 1 failed" in quiet.out
    assert main([*batch[:2], *SEEDED, "--progress", "--prefetch", "0"]) == EXIT_VIDEO_FAILED
    shown = capsys.readouterr()
    assert "2/2" in shown.err and untimed(shown.out) == untimed(quiet.out)


def untimed(out: str) -> list[str]:
    """The report's lines without those holding timings."""
    return [line for line in out.splitlines() if " s · " not in line and "loaded in" not in line]


@pytest.mark.parametrize("args, message", [
    (["--prefetch", "-1"], "--prefetch must be 0 (serial) or a positive integer, got -1"),
    (["--decoders", "0"], "--decoders must be a positive integer, got 0"),
])
def test_pipeline_usage_errors_exit_2(batch, capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        main([batch[0], *SEEDED, *args])
    assert exc.value.code == EXIT_USAGE and message in capsys.readouterr().err


def test_an_async_backend_gets_clips_in_flight_and_results_keep_their_order(predictor, batch):
    """A backend with an async queue (``in_flight`` 3) gets the next clips while the first still runs; later
    clips finish first, and the outcomes still come in input order and equal the serial loop's."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    serial = outcomes(predictor, batch, prefetch=0)
    runner, lock = predictor.runner, threading.Lock()
    busy, most, submitted = [0], [0], []

    def infer(clip: np.ndarray, delay: float) -> np.ndarray:
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        time.sleep(delay)  # the first clip is the slowest: the others finish before it
        try:
            return runner.run(clip)
        finally:
            with lock:
                busy[0] -= 1

    class AsyncQueue(type(runner)):
        in_flight = 3

        def submit(self, clip):
            submitted.append(clip)
            return pool.submit(infer, clip, 0.4 / len(submitted))

    queued = AsyncQueue.__new__(AsyncQueue)
    queued.__dict__.update(runner.__dict__)
    with ThreadPoolExecutor(max_workers=3) as pool:
        got = outcomes(Predictor(queued, predictor.spec, predictor.labels, predictor.model_info), batch, prefetch=2)
    assert [video for video, _ in got] == batch and len(submitted) == 4
    for (_, outcome), (_, expected) in zip(got, serial):
        assert type(outcome) is type(expected)
        if not isinstance(expected, VideoError):
            assert outcome.top == expected.top
    assert most[0] >= 2  # clips ran in the backend side by side
