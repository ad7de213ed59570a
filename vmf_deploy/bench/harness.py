"""The benchmark harness: every backend × variant measured the same way, side by side.

For each pair: check the backend can run here (else a ``skipped: <why>`` result), export
the artifact it needs (or take ``--artifact``), then measure in a fresh worker process
(:mod:`vmf_deploy.bench.worker`): load time, ``warmup`` untimed runs, ``runs`` timed runs
(batch 1, one clip), the peak resident memory, and the logits of the parity clips, which
are compared here with PyTorch fp32 eager on the same seeded weights. A failure in one
pair is a ``failed: <why>`` result and the others go on. Nothing that was not measured is
ever reported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import __version__
from ..parity import ParityReport, compare_logits, parity_clips
from ..runners import BACKENDS, runner_class
from . import schema
from .artifacts import artifact_precision, artifact_size, export_artifact

if TYPE_CHECKING:
    from .memory_budget import MemoryBudget

DEVICE_BACKENDS = ("android", "ios")
PEERS = ("x3d-xs", "x3d-s")
REFERENCE = "PyTorch fp32 eager"
NOT_MEASURED_EMULATED = "not measured: emulated"
"""The ``latency`` of a result run under emulation (its ``latency_ms`` is null): emulated time is no device's."""


def all_backends() -> list[str]:
    """Every ``--backend`` value: the runner backends, then the phone backends."""
    return [*BACKENDS, *DEVICE_BACKENDS]


def default_threads() -> int:
    """Default thread count: the physical cores (logical ones if unknown)."""
    from .machine import physical_cores

    return physical_cores() or os.cpu_count() or 1


@dataclass(frozen=True)
class BenchSettings:
    """How every pair is measured.

    Attributes:
        threads: intra-op threads given to every runtime (recorded in each result).
        warmup: untimed runs before timing.
        runs: timed runs (latency statistics are over these).
        frames: input frames (None: each variant's default, 64).
        parity_seeds: one parity clip per seed (``vmf_deploy.parity.parity_clips``).
        seed: seed of the deterministic model init (``build_seeded_model``); vmf-export's
            pipeline exports seed 0, so exported artifacts match only the default.
        profile: also write a per-op breakdown.
        timeout_s: limit for one worker process.
        rounds: times the whole matrix is measured (fresh worker each time); a result's
            latency statistics are over all its rounds' samples. Rounds minutes apart even
            out a machine whose speed drifts (a shared VM) across backends.
        precision: precision of the artifacts the harness exports (``int8``: calibrated on the
            synthetic dataset's calibration split); a given ``--artifact`` keeps its own.
    """

    threads: int
    warmup: int = 2
    runs: int = 10
    frames: int | None = None
    parity_seeds: tuple[int, ...] = (0, 1, 2)
    seed: int = 0
    profile: bool = False
    timeout_s: float = 1800.0
    rounds: int = 1
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.threads < 1 or self.warmup < 0 or self.runs < 1 or self.rounds < 1 or not self.parity_seeds:
            raise ValueError("threads >= 1, warmup >= 0, runs >= 1, rounds >= 1 and at least one parity seed "
                             "are needed")
        if self.frames is not None and self.frames < 1:
            raise ValueError(f"frames must be >= 1, got {self.frames}")

    def to_dict(self) -> dict:
        """The ``settings`` object of a results document."""
        return {"threads": self.threads, "warmup": self.warmup, "runs": self.runs, "rounds": self.rounds,
                "frames": self.frames, "parity_seeds": list(self.parity_seeds), "precision": self.precision}


def latency_stats(samples_ms: Sequence[float]) -> dict:
    """Median, p90, min, max, mean and the 80 % trimmed mean of per-clip latencies (ms)."""
    a = np.sort(np.asarray(samples_ms, dtype=np.float64))
    lo, hi = len(a) // 10, len(a) - len(a) // 10
    return {"median": float(np.median(a)), "p90": float(np.percentile(a, 90)), "min": float(a[0]),
            "max": float(a[-1]), "mean": float(a.mean()), "trimmed_mean": float(a[lo:hi].mean()),
            "samples": [float(s) for s in samples_ms]}


def empty_result(backend: str, variant: str, status: str, threads: int | None) -> dict:
    """A result with no measurement: the form of every ``skipped``/``failed`` row."""
    return {"backend": backend, "variant": variant, "peer": variant in PEERS, "status": status,
            "input_shape": None, "threads": threads, "artifact": None, "params": None, "flops": None,
            "load_ms": None, "latency_ms": None, "clips_per_s": None, "gflops_per_s": None, "memory": None,
            "parity": None, "profile": None}


def one_line(text: str, limit: int = 300) -> str:
    """An error message as one line for a table row."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Reference:
    """PyTorch fp32 reference of one variant: input shape, cost, parity clips and their logits."""

    variant: str
    overrides: dict
    input_shape: tuple[int, ...]
    params: int
    flops: int
    budget: MemoryBudget
    seeds: tuple[int, ...]
    clip_files: list[Path]
    logits: list[np.ndarray] = field(repr=False)


class Harness:
    """Measures backend × variant pairs with one set of :class:`BenchSettings` in ``workdir``."""

    def __init__(self, settings: BenchSettings, workdir: Path, artifacts: Sequence[Path] = ()) -> None:
        self.settings = settings
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.given_artifacts = [Path(a) for a in artifacts]
        self._references: dict[str, Reference] = {}
        self._exports: dict[tuple[str, str], Path] = {}

    # ----- reference -------------------------------------------------------------
    def overrides(self) -> dict:
        """Config overrides applied to every variant (the ``--frames`` override)."""
        return {} if self.settings.frames is None else {"frames": self.settings.frames}

    def reference(self, variant: str) -> Reference:
        """The (cached) PyTorch reference of ``variant`` with this run's settings."""
        if variant not in self._references:
            import torch

            from .. import build_seeded_model, count_flops, count_params
            from .memory_budget import memory_budget

            overrides = self.overrides()
            model = build_seeded_model(variant, seed=self.settings.seed, **overrides)
            shape = tuple(model.cfg.input_shape)
            clips = parity_clips(shape, list(self.settings.parity_seeds))
            files = []
            for seed, clip in zip(self.settings.parity_seeds, clips):
                path = self.workdir / "clips" / f"{variant}-{'x'.join(map(str, shape))}-seed{seed}.npy"
                path.parent.mkdir(parents=True, exist_ok=True)
                np.save(path, clip)
                files.append(path)
            with torch.inference_mode():
                logits = [model(torch.from_numpy(c)).numpy() for c in clips]
            self._references[variant] = Reference(variant, overrides, shape, count_params(model),
                                                  count_flops(model, shape), memory_budget(model, torch.zeros(shape)),
                                                  tuple(self.settings.parity_seeds),
                                                  files, logits)
        return self._references[variant]

    # ----- artifacts -------------------------------------------------------------
    def artifact_for(self, backend: str, variant: str) -> Path | None:
        """The artifact ``backend`` runs for ``variant``: a given one with its suffix, else an export.

        ``None`` for eager PyTorch backends (the worker builds the seeded model itself).
        """
        cls = runner_class(backend)
        suffix = cls.artifact_suffix
        for path in self.given_artifacts:
            if suffix and path.name.endswith(suffix):
                return path
        if cls.export_target is None:
            return None
        key = (cls.export_target, variant)
        if key not in self._exports:
            frames = self.reference(variant).input_shape[2]
            out = self.workdir / "artifacts" / cls.export_target
            self._exports[key] = export_artifact(cls.export_target, variant, frames, out, self.settings.precision)
        return self._exports[key]

    # ----- measurement -----------------------------------------------------------
    def run(self, backend: str, variant: str) -> dict:
        """Measure one pair; always returns a result (``ok``, ``skipped: ...`` or ``failed: ...``)."""
        threads = self.settings.threads
        if backend in DEVICE_BACKENDS:
            from .devices import run_on_device

            return run_on_device(backend, variant, self)
        try:
            cls = runner_class(backend)
        except (ImportError, AttributeError) as e:
            return empty_result(backend, variant, f"failed: runner of {backend} cannot be imported ({one_line(e)})",
                                threads)
        reason = cls.availability()
        if reason:
            status = reason if reason.startswith(("skipped: ", "failed: ")) else f"skipped: {reason}"
            return empty_result(backend, variant, one_line(status), threads)
        try:
            ref = self.reference(variant)
            artifact = self.artifact_for(backend, variant)
        except Exception as e:  # an export failure fails this row only
            return empty_result(backend, variant, f"failed: {one_line(e)}", threads)
        return self.measure(backend, variant, ref, artifact)

    def worker_spec(self, backend: str, variant: str, ref: Reference, artifact: Path | None) -> dict:
        """The JSON spec handed to the worker process."""
        model = None if artifact is not None else {"variant": variant, "seed": self.settings.seed,
                                                   "overrides": ref.overrides}
        return {"backend": backend, "threads": self.settings.threads, "warmup": self.settings.warmup,
                "runs": self.settings.runs, "artifact": None if artifact is None else str(artifact),
                "model": model, "clips": [str(p) for p in ref.clip_files], "profile": self.settings.profile,
                "profile_dir": str(self.workdir / "profiles" / f"{backend}-{variant}")}

    def measure(self, backend: str, variant: str, ref: Reference, artifact: Path | None) -> dict:
        """Run the worker for one pair and turn its output into a result."""
        threads = self.settings.threads
        tag = f"{backend}-{variant}"
        spec_file, out_file = self.workdir / f"{tag}.spec.json", self.workdir / f"{tag}.out.json"
        out_file.unlink(missing_ok=True)
        spec_file.write_text(json.dumps(self.worker_spec(backend, variant, ref, artifact)))
        package_root = str(Path(__file__).resolve().parents[2])  # the worker imports this same vmf_deploy
        pythonpath = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": pythonpath}
        try:
            proc = subprocess.run([sys.executable, "-m", "vmf_deploy.bench.worker", str(spec_file), str(out_file)],
                                  capture_output=True, text=True, timeout=self.settings.timeout_s, env=env)
        except subprocess.TimeoutExpired:
            return empty_result(backend, variant, f"failed: timed out after {self.settings.timeout_s:.0f} s", threads)
        if not out_file.is_file():
            tail = one_line(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "")
            return empty_result(backend, variant, f"failed: worker exited with code {proc.returncode} {tail}".strip(),
                                threads)
        out = json.loads(out_file.read_text())
        if "skipped" in out:
            return empty_result(backend, variant, f"skipped: {one_line(out['skipped'])}", threads)
        if "error" in out:
            return empty_result(backend, variant, f"failed: {one_line(out['error'])}", threads)
        return self.result_from(backend, variant, ref, artifact, out)

    def result_from(self, backend: str, variant: str, ref: Reference, artifact: Path | None, out: dict) -> dict:
        """An ``ok`` result from a worker's measurements and the parity against the reference."""
        report = compare_logits(ref.logits, [np.asarray(x, dtype=np.float32) for x in out["logits"]])
        if out.get("emulated_cpu"):
            return self.emulated_result(backend, variant, ref, artifact, out, report)
        lat = latency_stats(out["samples_ms"])
        result = empty_result(backend, variant, "ok", self.settings.threads)
        result.update({
            "input_shape": list(ref.input_shape), "params": ref.params, "flops": ref.flops,
            "artifact": None if artifact is None else {
                "path": str(artifact), "format": artifact.suffix.lstrip("."), "size_bytes": artifact_size(artifact),
                "precision": artifact_precision(artifact)},
            "load_ms": out["load_ms"], "latency_ms": lat, "clips_per_s": 1e3 / lat["median"],
            "gflops_per_s": ref.flops / 1e9 / (lat["median"] / 1e3), "memory": {
                **out["memory"], "weights_bytes": ref.budget.weights_bytes,
                "activation_set_bytes": ref.budget.activation_bytes},
            "parity": {"reference": REFERENCE, "seeds": list(self.settings.parity_seeds), **report.to_dict()},
            "profile": out.get("profile"),
        })
        if out.get("profile_note"):
            result["profile_note"] = out["profile_note"]
        return result

    def emulated_result(self, backend: str, variant: str, ref: Reference, artifact: Path | None, out: dict,
                        report: ParityReport) -> dict:
        """An ``ok`` result of a backend run under emulation: parity and the emulated CPU, never a time or memory."""
        result = empty_result(backend, variant, "ok", self.settings.threads)
        result.update({
            "input_shape": list(ref.input_shape), "params": ref.params, "flops": ref.flops,
            "artifact": None if artifact is None else {
                "path": str(artifact), "format": artifact.suffix.lstrip("."), "size_bytes": artifact_size(artifact),
                "precision": artifact_precision(artifact)},
            "parity": {"reference": REFERENCE, "seeds": list(self.settings.parity_seeds), **report.to_dict()},
            "latency": NOT_MEASURED_EMULATED, "emulated_cpu": out["emulated_cpu"],
        })
        return result


def build_document(results: list[dict], settings: BenchSettings, device: dict, command: str = "") -> dict:
    """A validated ``vmf-deploy/bench`` document from results measured on ``device``."""
    records = [rec for r in results for rec in schema.records_for(r, r.get("device_info", device))]
    doc = {"schema": schema.SCHEMA, "schema_version": schema.SCHEMA_VERSION,
           "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "tool": {"name": "vmf-bench", "version": __version__, "command": command},
           "device": device, "settings": settings.to_dict(), "results": results, "records": records}
    return schema.validate(doc)


def merge_rounds(rounds: Sequence[dict]) -> dict:
    """One result from the same backend × variant measured in several rounds.

    Latency statistics are over every round's samples; memory is the round with the highest
    inference RSS and parity the worst round's. If any round did not succeed, its result is
    returned instead (its status says why).
    """
    failed = [r for r in rounds if r["status"] != "ok"]
    if failed or len(rounds) == 1:
        return failed[0] if failed else rounds[0]
    if rounds[0]["latency_ms"] is None:  # emulated: parity only, the worst round's
        return max(rounds, key=lambda r: r["parity"]["max_rel_error"])
    merged = dict(rounds[0])
    samples = [x for r in rounds for x in r["latency_ms"]["samples"]]
    lat = latency_stats(samples)
    merged.update({
        "latency_ms": lat, "clips_per_s": 1e3 / lat["median"],
        "gflops_per_s": None if merged["flops"] is None else merged["flops"] / 1e9 / (lat["median"] / 1e3),
        "memory": max((r["memory"] for r in rounds), key=lambda m: m["inference_rss_bytes"]),
        "parity": max((r["parity"] for r in rounds), key=lambda p: p["max_rel_error"]),
        "load_ms": float(np.median([r["load_ms"] for r in rounds])),
    })
    return merged


def run_matrix(backends: Sequence[str], variants: Sequence[str], settings: BenchSettings, workdir: Path,
               artifacts: Sequence[Path] = (), on_result: Callable[[dict], None] | None = None) -> list[dict]:
    """Measure every backend × variant (variant-major, so one variant's artifacts are reused).

    With ``settings.rounds`` > 1 the whole matrix is measured that many times, the backend
    order rotating each round, and each pair's rounds are merged (:func:`merge_rounds`).
    ``on_result`` sees every round's result.
    """
    harness = Harness(settings, workdir, artifacts)
    measured: dict[tuple[str, str], list[dict]] = {}
    backends = list(backends)
    for round_index in range(settings.rounds):
        shift = round_index % len(backends) if backends else 0
        for variant in variants:
            for backend in backends[shift:] + backends[:shift]:
                result = harness.run(backend, variant)
                measured.setdefault((backend, variant), []).append(result)
                if on_result is not None:
                    on_result(result)
    return [merge_rounds(measured[(b, v)]) for v in variants for b in backends if (b, v) in measured]
