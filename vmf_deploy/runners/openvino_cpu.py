"""``openvino-cpu`` / ``openvino-gpu``: an exported OpenVINO IR (``.xml`` + ``.bin``) in OpenVINO Runtime.

The IR carries the compile options of its recipe (``export/openvino.toml``) in its runtime info
(``vmf_deploy.export.openvino_export.COMPILE_OPTIONS_KEY``); the runner compiles with them, the
``threads`` argument overriding ``INFERENCE_NUM_THREADS``. When the artifact's manifest is beside
it, both files are checked against the manifest's sha256 before anything is read, so a modified
``.bin`` is refused.

Latency-first by default (one synchronous infer request, as ``vmf-bench`` measures). With
``throughput`` set before :meth:`~OpenVINOCPURunner.load` (``vmf-predict`` over several videos),
the IR is compiled with the ``THROUGHPUT`` hint, OpenVINO picks the streams, and
:meth:`~OpenVINOCPURunner.submit` feeds an ``AsyncInferQueue`` of the plugin's optimal number of
requests.

An IR exported with ``[openvino] input_layout = "NTHWC"`` takes channels-last clips
``(1, T, H, W, 3)`` (its runtime info says so: ``INPUT_LAYOUT_KEY``); the runner's
``input_layout`` is then ``NTHWC``, and an ``NCTHW`` clip is transposed before it is fed.
"""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

import numpy as np

from vmf_deploy.preprocess import layout_shape, to_layout

from .base import BackendUnavailable, Runner, RunnerError

COMPILE_OPTIONS_KEY = ("vmf_deploy", "compile_options")
"""Where the IR's runtime info holds the recipe's compile options (``ov.Model.get_rt_info`` path)."""
INPUT_LAYOUT_KEY = ("vmf_deploy", "input_layout")
"""Where the IR's runtime info names the layout of its input (absent: ``NCTHW``)."""


class OpenVINOCPURunner(Runner):
    """OpenVINO Runtime on the CPU plugin: one synchronous infer request, or an async queue for throughput."""

    name = "openvino-cpu"
    artifact_suffix = ".xml"
    export_target = "openvino"
    device = "CPU"
    queue = None

    @classmethod
    def availability(cls) -> str | None:
        """Reason OpenVINO (or this device) is missing, else None."""
        try:
            import openvino as ov
        except ImportError:
            return "skipped: openvino is not installed (pip install 'vmf-deploy[openvino]')"
        devices = ov.Core().available_devices
        if not any(d.split(".")[0] == cls.device for d in devices):
            return f"skipped: no OpenVINO {cls.device} device (available: {', '.join(devices) or 'none'})"
        return None

    def load(self, artifact: Path) -> None:
        """Verify the IR against its manifest (when present), read it and compile it for ``device``."""
        reason = self.availability()
        if reason:
            raise BackendUnavailable(reason)
        import openvino as ov

        from vmf_deploy.manifest import ManifestError, manifest_path, read_manifest, verify_artifact

        artifact = Path(artifact)
        if manifest_path(artifact).is_file():
            try:
                verify_artifact(artifact, read_manifest(manifest_path(artifact)))
            except ManifestError as e:
                raise RunnerError(str(e)) from None
        core = ov.Core()
        try:
            model = core.read_model(str(artifact))
            self.input_layout = input_layout(model)
            self.config = compile_options(model)
            if self.threads:
                self.config["INFERENCE_NUM_THREADS"] = str(self.threads)
            if self.throughput:
                self.config["PERFORMANCE_HINT"] = "THROUGHPUT"
                self.config.pop("NUM_STREAMS", None)  # the hint picks the streams for this device
            self.compiled = core.compile_model(model, self.device, self.config)
        except RuntimeError as e:  # OpenVINO raises RuntimeError subclasses with multi-line messages
            first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
            raise RunnerError(f"OpenVINO could not load {artifact} on {self.device}: {first}; re-export it with "
                              "vmf-export --target openvino") from None
        self.request = self.compiled.create_infer_request()
        shape = self.compiled.input(0).get_partial_shape()
        self.input_shape = tuple(d.get_length() for d in shape) if shape.is_static else None
        if self.throughput:
            self.queue = ov.AsyncInferQueue(self.compiled, self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
            self.queue.set_callback(_deliver)
            self.in_flight = len(self.queue)

    def run(self, clip: np.ndarray) -> np.ndarray:
        """Run the infer request on one clip (a copy of the output: the request reuses its buffer)."""
        self.request.infer({0: self.feed(clip)})
        return np.array(self.request.get_output_tensor(0).data, dtype=np.float32)

    def feed(self, clip: np.ndarray) -> np.ndarray:
        """``clip`` as the IR's input: as is in ``input_layout``, transposed from ``NCTHW``, else refused."""
        clip = np.ascontiguousarray(clip, dtype=np.float32)
        if self.input_shape is None or clip.shape == self.input_shape:
            return clip
        planar = clip.ndim == 5 and self.input_layout != "NCTHW"
        if planar and layout_shape(clip.shape, self.input_layout) == self.input_shape:
            return to_layout(clip, self.input_layout)
        raise RunnerError(f"the IR takes {self.input_layout} input {list(self.input_shape)} but got "
                          f"{list(clip.shape)}: preprocess with the artifact's manifest (its preprocessing)")

    def submit(self, clip: np.ndarray) -> Future:
        """Start one clip on the async queue (blocks while every request is busy); synchronous without one."""
        if self.queue is None:
            return super().submit(clip)
        future: Future = Future()
        try:
            self.queue.start_async({0: self.feed(clip)}, future)
        except RuntimeError as e:  # a wrong input (RunnerError included) is refused here, before anything runs
            future.set_exception(e)
        return future

    def close(self) -> None:
        """Wait for queued clips, then drop the queue, the infer request and the compiled model."""
        if self.queue is not None:
            self.queue.wait_all()
        self.queue = None
        self.request = None
        self.compiled = None


class OpenVINOGPURunner(OpenVINOCPURunner):
    """OpenVINO Runtime on the GPU plugin (Intel GPUs); skipped where OpenVINO lists no GPU device."""

    name = "openvino-gpu"
    device = "GPU"


def _deliver(request: object, future: Future) -> None:
    """AsyncInferQueue callback: a copy of the request's logits into the clip's future (the request is reused)."""
    try:
        future.set_result(np.array(request.get_output_tensor(0).data, dtype=np.float32))
    except Exception as e:  # noqa: BLE001 - an exception escaping the callback would be lost in OpenVINO's thread
        future.set_exception(e)


def input_layout(model: object) -> str:
    """The input layout an IR's runtime info names (``NCTHW`` for an IR without one)."""
    if not model.has_rt_info(list(INPUT_LAYOUT_KEY)):
        return "NCTHW"
    return model.get_rt_info(list(INPUT_LAYOUT_KEY)).astype(str)


def compile_options(model: object) -> dict[str, str]:
    """The compile options saved in an IR's runtime info (empty for an IR not written by vmf-export)."""
    if not model.has_rt_info(list(COMPILE_OPTIONS_KEY)):
        return {}
    saved = model.get_rt_info(list(COMPILE_OPTIONS_KEY))
    return {key: value.astype(str) for key, value in saved.astype(dict).items()}
