"""``onnxruntime-arm64``: an ``.onnx`` in onnxruntime's aarch64 CPU kernels, emulated by ``qemu-aarch64-static``.

The runner starts, once per artifact, the aarch64 CPython of the cached userland
(:mod:`vmf_deploy.arm64.userland`) under qemu, running :mod:`vmf_deploy.arm64.ort_server`, and sends
it one line per clip, ``run IN.raw OUT.raw SHAPE``, with the clip and the logits as raw float32
files in a private temp folder; the server answers ``ok <output shape>`` or ``error <message>``
(the protocol of ``executorch-native``'s ``vmf_run --serve``). qemu emulates :attr:`cpu`
(``cortex-a76`` unless the constructor or ``$VMF_QEMU_CPU`` names another) and the guest reads that
core's ``/proc/cpuinfo`` (:func:`vmf_deploy.arm64.qemu.cpu_view`). When the artifact's manifest is
beside it, the ``.onnx`` is checked against the manifest's sha256 before the server starts, so a
tampered ``.onnx`` is refused here too.

What this verifies: onnxruntime's ARM NEON (and, with ``max``, SVE) kernels compute what PyTorch
computes. What it cannot: a phone's latency, memory or thermal behaviour: emulation is about 200×
slower than native, so nothing is timed (:attr:`emulation`; vmf-bench reports no latency).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..arm64.qemu import cpu_view, missing_qemu_message, qemu_binary, qemu_cpu
from ..arm64.userland import default_root, python_path, userland_problem
from ..manifest import ManifestError, manifest_path, read_manifest, verify_artifact
from .base import BackendUnavailable, Runner, RunnerError
from .line_server import fast_tmp_dir, request, stop_server

SERVER = Path(__file__).resolve().parents[1] / "arm64" / "ort_server.py"
BUILD_HINT = "build it with python -m vmf_deploy.arm64.userland (about 2 min, as root; docs/runtime.md)"


class OnnxRuntimeARM64Runner(Runner):
    """onnxruntime's CPU provider on aarch64, in a persistent ``ort_server.py`` under ``qemu-aarch64-static``."""

    name = "onnxruntime-arm64"
    artifact_suffix = ".onnx"
    export_target = "onnx"

    def __init__(self, threads: int | None = None, cpu: str | None = None, userland: str | Path | None = None) -> None:
        super().__init__(threads)
        try:
            self.cpu = qemu_cpu(cpu)
        except ValueError as e:
            raise RunnerError(str(e)) from None
        self.userland = Path(userland) if userland is not None else default_root()
        self.process: subprocess.Popen | None = None
        self.workdir: Path | None = None

    @property
    def emulation(self) -> dict[str, str]:
        """What this runner emulates (vmf-bench's ``emulation``): latency and memory under it are not a phone's."""
        return {"emulator": "qemu-aarch64-static", "arch": "aarch64", "cpu": self.cpu}

    @classmethod
    def availability(cls) -> str | None:
        """Reason qemu or the default userland is missing or the ``$VMF_QEMU_CPU`` model is unknown, else None."""
        if qemu_binary() is None:
            return f"skipped: {missing_qemu_message()}"
        problem = userland_problem(default_root())
        if problem:
            return f"skipped: {problem}; {BUILD_HINT}"
        try:
            qemu_cpu()
        except ValueError as e:
            return f"failed: {e}"
        return None

    def load(self, artifact: Path) -> None:
        """Verify the artifact against its manifest (when present), start the server on it and wait until it is loaded."""
        qemu = qemu_binary()
        if qemu is None:
            raise BackendUnavailable(f"skipped: {missing_qemu_message()}")
        problem = userland_problem(self.userland)
        if problem:
            raise BackendUnavailable(f"skipped: {problem}; {BUILD_HINT}")
        artifact = Path(artifact).absolute()
        if not artifact.is_file():
            raise RunnerError(f"ONNX model {artifact} does not exist: export it with vmf-export --target onnx")
        self.input_shape: tuple[int, ...] | None = None
        if manifest_path(artifact).is_file():
            try:
                manifest = read_manifest(manifest_path(artifact))
                verify_artifact(artifact, manifest)
            except ManifestError as e:
                raise RunnerError(str(e)) from None
            self.input_shape = tuple(manifest["input"]["shape"])
        self.workdir = Path(tempfile.mkdtemp(prefix="vmf-ort-arm64-", dir=fast_tmp_dir()))
        prefix = cpu_view(self.userland, self.cpu, self.workdir / "root")
        self.stderr_path = self.workdir / "stderr.log"
        cmd = [str(qemu), str(python_path(self.userland)), "-I", str(SERVER), str(artifact)]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "QEMU_LD_PREFIX": str(prefix), "QEMU_CPU": self.cpu}
        with open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                                            bufsize=1, env=env)
        reply = self.process.stdout.readline().strip()
        if not reply.startswith("ready "):
            message = reply.removeprefix("error ") if reply.startswith("error ") else self._crash_report()
            self.close()
            raise RunnerError(f"onnxruntime (aarch64, {self.cpu} under qemu) could not load {artifact}: {message}")
        if self.input_shape is None and "?" not in reply.split()[1]:
            self.input_shape = tuple(int(d) for d in reply.split()[1].split("x"))

    def _crash_report(self) -> str:
        """Why the server stopped without a reply: its exit code and the last lines it wrote to stderr."""
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            code = None
        lines = self.stderr_path.read_text(errors="replace").strip().splitlines() if self.stderr_path.exists() else []
        tail = " | ".join(lines[-3:]) or "no output"
        return f"the aarch64 server exited with code {code} ({tail})"

    def run(self, clip: np.ndarray) -> np.ndarray:
        """Run one clip (of the manifest's input shape when there is one); return its logits."""
        if self.process is None or self.process.poll() is not None:
            raise RunnerError("onnxruntime-arm64 runner has no running server: call load() first")
        clip = np.ascontiguousarray(clip, dtype=np.float32)
        if self.input_shape is not None and tuple(clip.shape) != self.input_shape:
            raise RunnerError(f"the model was exported for input {self.input_shape} but got {tuple(clip.shape)}: "
                              "re-export with matching --frames / resolution or feed clips of that shape")
        src, dst = self.workdir / "input.raw", self.workdir / "logits.raw"
        clip.tofile(src)
        reply = request(self.process, f"run {src} {dst} {'x'.join(map(str, clip.shape))}")
        if reply.startswith("error "):
            raise RunnerError(f"onnxruntime (aarch64) failed: {reply[6:]}")
        if not reply.startswith("ok "):
            raise RunnerError(f"onnxruntime (aarch64) stopped: {self._crash_report()}")
        shape = tuple(int(d) for d in reply.split()[1].split("x"))
        return np.fromfile(dst, dtype=np.float32).reshape(shape)

    def close(self) -> None:
        """Stop the server and remove the temp folder."""
        if self.process is not None:
            stop_server(self.process, timeout=30)
            self.process = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
