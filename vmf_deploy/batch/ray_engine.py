"""Predict a list of videos on Ray Data: decode + preprocess as CPU tasks, inference in a pool of actors.

Each path goes through ``map_batches(decode_batch)`` (a task: :func:`vmf_deploy.video.read_clip`,
the same decoder and preprocessing as plain ``vmf-predict``), then through an
:class:`InferenceActor` that holds one loaded :class:`~vmf_deploy.predict.Predictor`. A video
that cannot be decoded or classified becomes its error row; it never fails the job. Inference
actors are restarted by Ray when their process dies (``MAX_RESTARTS``) and their unfinished
batch is retried (``MAX_TASK_RETRIES``). Ray is imported only here, when the engine runs.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..preprocess import PreprocessSpec
from .rows import record_row
from .sources import is_remote, local_path, open_filesystem

MAX_RESTARTS = 3
"""Times Ray restarts a dead inference actor (a crash that repeats on every restart still ends the job)."""
MAX_TASK_RETRIES = 3
"""Times Ray resubmits a batch whose inference actor died while running it."""
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Set to 0 before Ray is imported, Ray addresses its own local processes over 127.0.0.1 only."""


class RayEngineError(RuntimeError):
    """Ray could not be started or reached, or the job failed; the message says what to do."""


@dataclass(frozen=True)
class ModelRef:
    """How an inference actor loads its model: an artifact (+ backend) or a variant (+ checkpoint)."""

    artifact: str | None = None
    variant: str | None = None
    checkpoint: str | None = None
    frames: int | None = None
    backend: str | None = None
    threads: int | None = None

    def load(self) -> object:
        """The loaded :class:`~vmf_deploy.predict.Predictor` (raises ``ModelLoadError``)."""
        from ..predict import Predictor

        if self.artifact:
            return Predictor.from_artifact(self.artifact, self.backend, self.threads)
        return Predictor.from_variant(self.variant, self.checkpoint, self.frames, self.threads,
                                      backend=self.backend or "torch-cpu")


def connect(address: str | None, num_cpus: int) -> bool:
    """Start a local Ray (``address`` None: loopback, no dashboard, quiet) or join the cluster at ``address``.

    Returns True when this call started or joined Ray (the caller then calls ``ray.shutdown()``);
    False when this process was already connected. Loopback-only needs this call to be the first
    import of Ray in the process.
    """
    if address is not None:
        check_reachable(address)
    if address is None or address.split("://")[-1].rsplit(":", 1)[0] in ("127.0.0.1", "localhost"):
        os.environ.setdefault(LOOPBACK_ENV, "0")  # a Ray on this machine's loopback; read when Ray is imported
    import ray

    if ray.is_initialized():
        return False
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    try:
        if address is None:
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise RayEngineError(f"could not start or reach {where}: {str(e).splitlines()[0]}"
                             + ("; check the address (ray status on the head node prints it)" if address else ""))
    return True


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Raise :class:`RayEngineError` when nothing accepts connections at ``address`` (``host:port``).

    Ray itself retries an unreachable address for minutes; ``auto`` and addresses without a
    port are left to Ray.
    """
    import socket

    host, sep, port = address.split("://")[-1].rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise RayEngineError(f"nothing answers at --address {address} ({e.strerror or e}); start the cluster's head "
                             "(ray start --head) or check the address (ray status on the head prints it)") from None


def cluster_gpus() -> float:
    """GPUs the connected Ray cluster has."""
    import ray

    return float(ray.cluster_resources().get("GPU", 0))


def fetch_local(path: str, into: str) -> str:
    """A local file to decode: ``path`` itself, or a remote object copied into the folder ``into``."""
    if not is_remote(path):
        return local_path(path)
    fs, inner = open_filesystem(path)
    target = os.path.join(into, "video" + os.path.splitext(inner)[1])
    with fs.open_input_stream(inner) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return target


def decode_one(path: str, spec: PreprocessSpec, allow_partial: bool) -> tuple[bytes, str]:
    """``(pickled Clip, "")`` for a decodable video, ``(b"", JSON error record)`` for one that is not."""
    from ..predict import error_record
    from ..video import VideoError, read_clip

    try:
        with tempfile.TemporaryDirectory(prefix="vmf-ray-") as folder:
            try:
                local = fetch_local(path, folder)
            except FileNotFoundError:
                raise VideoError("missing", path, "no such file; check the path") from None
            except OSError as e:
                raise VideoError("unreadable", path, f"cannot read it ({e})") from None
            return pickle.dumps(read_clip(local, spec, allow_partial), protocol=5), ""
    except VideoError as e:
        return b"", json.dumps(error_record(path, e))
    except Exception as e:  # a decoder failure no VideoError names still costs one row, not the job
        return b"", json.dumps(error_record(path, RuntimeError(f"decoding failed: {type(e).__name__}: {e}")))


def decode_batch(batch: dict[str, np.ndarray], spec: PreprocessSpec, allow_partial: bool) -> dict[str, np.ndarray]:
    """Ray task body: decode and preprocess every path of ``batch`` into a clip or an error."""
    decoded = [decode_one(str(p), spec, allow_partial) for p in batch["path"]]
    return {"path": np.asarray([str(p) for p in batch["path"]], dtype=object),
            "clip": np.asarray([c for c, _ in decoded], dtype=object),
            "error": np.asarray([e for _, e in decoded], dtype=object)}


class InferenceActor:
    """Ray actor body: one loaded model; turns decoded clips (or their errors) into result rows."""

    def __init__(self, model: ModelRef, topk: int, keep_logits: bool) -> None:
        self.predictor = model.load()
        self.topk, self.keep_logits = topk, keep_logits

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Result rows (as JSON) of one batch of decoded clips."""
        from ..predict import InferenceError, error_record

        rows = []
        for path, blob, error in zip(batch["path"], batch["clip"], batch["error"], strict=True):
            if error:
                record = json.loads(error)
            else:
                try:
                    record = self.predictor.classify(pickle.loads(blob), str(path), self.topk).to_record()
                except InferenceError as e:
                    record = error_record(str(path), e)
            rows.append(json.dumps(record_row(record, self.keep_logits)))
        return {"path": np.asarray([str(p) for p in batch["path"]], dtype=object),
                "row": np.asarray(rows, dtype=object)}


def predict_paths(paths: list[str], model: ModelRef, spec: PreprocessSpec, on_rows: Callable[[list[dict]], None], *,
                  topk: int, keep_logits: bool, allow_partial: bool, workers: int | None, actors: int,
                  use_gpu: bool) -> None:
    """Run every path through decode tasks and inference actors; hand each finished block of rows to ``on_rows``.

    ``workers`` caps the decode tasks running at once (None: as many as free CPUs allow). Needs a
    connected Ray (:func:`connect`). Raises :class:`RayEngineError` when the job itself fails.
    """
    import ray
    from ray.data import ActorPoolStrategy, DataContext, TaskPoolStrategy

    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    items = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=max(1, min(len(paths), 1000)))
    decoded = items.map_batches(decode_batch, fn_kwargs={"spec": spec, "allow_partial": allow_partial},
                                batch_size=1, batch_format="numpy", num_cpus=1, compute=TaskPoolStrategy(size=workers))
    with warnings.catch_warnings():  # Ray 2.60 names the retry options "deprecated" but has no replacement yet
        warnings.simplefilter("ignore")
        rows = decoded.map_batches(InferenceActor, fn_constructor_kwargs={"model": model, "topk": topk,
                                   "keep_logits": keep_logits}, batch_size=1, batch_format="numpy",
                                   compute=ActorPoolStrategy(size=actors), num_cpus=1,
                                   num_gpus=1 if use_gpu else None, max_restarts=MAX_RESTARTS,
                                   max_task_retries=MAX_TASK_RETRIES)
    try:
        for batch in rows.iter_batches(batch_size=None, batch_format="numpy"):
            on_rows([json.loads(row) for row in batch["row"]])
    except ray.exceptions.RayError as e:
        raise RayEngineError(f"the Ray job failed: {_first_line(e)}") from None


def _first_line(error: Exception) -> str:
    """The first meaningful line of a (multi-line) Ray exception."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def absolute(path: str | Path | None) -> str | None:
    """``path`` made absolute (Ray workers may run in another folder); None stays None."""
    return None if path is None else str(Path(path).resolve())
