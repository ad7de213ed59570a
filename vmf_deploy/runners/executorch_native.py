"""``executorch-native``: a ``.pte`` run by the native C++ runtime (``runtimes/``, ``vmf_run``).

The runner starts ``vmf_run MODEL.pte --manifest MODEL.pte.manifest.json --serve`` once per
artifact (so the program loads once, as in an app) and sends it one line per clip,
``run IN.raw OUT.raw``, with the clip and the logits as raw float32 files in a private temp
folder; ``vmf_run`` answers ``ok <model ms>`` or ``error <message>``. It runs in its own process
because the native ExecuTorch libraries and ExecuTorch's Python extension each register the
same operators, which one process cannot hold twice. ``vmf_run`` checks the artifact's sha256
against the manifest before loading, so a tampered ``.pte`` is refused here too.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..manifest import ManifestError, manifest_path, read_manifest
from ..native_build import vmf_run_path
from .base import BackendUnavailable, Runner, RunnerError
from .line_server import fast_tmp_dir, request, stop_server

BUILD_HINT = "python -m vmf_deploy.native_build (cmake -S runtimes -B runtimes/build ...; see docs/runtime.md)"


class ExecuTorchNativeRunner(Runner):
    """ExecuTorch's C++ Module API with the XNNPACK delegate, through a persistent ``vmf_run --serve``."""

    name = "executorch-native"
    artifact_suffix = ".pte"
    export_target = "executorch"

    def __init__(self, threads: int | None = None, binary: str | Path | None = None) -> None:
        super().__init__(threads)
        self.binary = Path(binary) if binary is not None else vmf_run_path()
        self.process: subprocess.Popen | None = None
        self.last_model_ms: float | None = None
        self.load_ms: float | None = None

    @classmethod
    def availability(cls) -> str | None:
        """Reason the native runtime cannot run (``vmf_run`` not built), else None."""
        binary = vmf_run_path()
        if not binary.is_file():
            return f"skipped: native runtime not built ({binary} missing; run {BUILD_HINT})"
        return None

    def load(self, artifact: Path) -> None:
        """Start ``vmf_run --serve`` on the artifact and wait until it has verified and loaded it."""
        if not self.binary.is_file():
            raise BackendUnavailable(f"skipped: native runtime not built ({self.binary} missing; run {BUILD_HINT})")
        artifact = Path(artifact)
        if not artifact.is_file():
            raise RunnerError(f"ExecuTorch program {artifact} does not exist: export it with "
                              "vmf-export --target executorch")
        try:
            manifest = read_manifest(manifest_path(artifact))
        except ManifestError as e:
            raise RunnerError(f"{e} (the native runtime reads the preprocessing, shapes and hash from it)") from None
        self.input_shape = tuple(manifest["input"]["shape"])
        self.output_shape = tuple(manifest["output"]["shape"])
        self.workdir = Path(tempfile.mkdtemp(prefix="vmf-native-", dir=fast_tmp_dir()))
        self.stderr_path = self.workdir / "stderr.log"
        cmd = [*self.launcher(), str(artifact), "--manifest", str(manifest_path(artifact)), "--serve"]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        with open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                                            bufsize=1, env=self.child_env())
        reply = self.process.stdout.readline().strip()
        if not reply.startswith("ready "):
            self.process.wait(timeout=30)
            message = self._child_error() or f"vmf_run exited with code {self.process.returncode}"
            self.close()
            raise RunnerError(f"the native runtime refused {artifact}: {message}")
        self.load_ms = float(reply.split()[1])

    def launcher(self) -> list[str]:
        """The command that starts ``vmf_run`` (its arguments follow)."""
        return [str(self.binary)]

    def child_env(self) -> dict[str, str] | None:
        """The environment of the ``vmf_run`` child (None: this process's)."""
        return None

    @property
    def pid(self) -> int | None:
        """Process id of the ``vmf_run`` child that holds the program (its memory is not this process's)."""
        return self.process.pid if self.process is not None else None

    def _child_error(self) -> str:
        """The ``vmf_run: error: ...`` line the child wrote to stderr (empty if none)."""
        lines = self.stderr_path.read_text(errors="replace").splitlines() if self.stderr_path.exists() else []
        errors = [line.split("error:", 1)[1].strip() for line in lines if line.startswith("vmf_run: error:")]
        return errors[-1] if errors else ""

    def run(self, clip: np.ndarray) -> np.ndarray:
        """Run one clip of the manifest's input shape; return the logits ``(1, classes)``."""
        if self.process is None or self.process.poll() is not None:
            raise RunnerError("executorch-native runner has no running program: call load() first")
        clip = np.ascontiguousarray(clip, dtype=np.float32)
        if tuple(clip.shape) != self.input_shape:
            raise RunnerError(f"the program was exported for input {self.input_shape} but got {tuple(clip.shape)}: "
                              "re-export with matching --frames / resolution or feed clips of that shape")
        src, dst = self.workdir / "input.raw", self.workdir / "logits.raw"
        clip.tofile(src)
        reply = request(self.process, f"run {src} {dst}")
        if reply.startswith("error "):
            raise RunnerError(f"the native runtime failed: {reply[6:]}")
        if not reply.startswith("ok "):
            raise RunnerError(f"the native runtime stopped: {self._child_error() or 'no reply from vmf_run'}")
        self.last_model_ms = float(reply.split()[1])
        return np.fromfile(dst, dtype=np.float32).reshape(self.output_shape)

    def close(self) -> None:
        """Stop ``vmf_run`` and remove the temp folder."""
        if self.process is not None:
            stop_server(self.process, timeout=10)
            self.process = None
        if getattr(self, "workdir", None) is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
