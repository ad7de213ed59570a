"""Shared fixtures: small seeded models and realistic normalised clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

torch.set_num_threads(2)


def normalised_clip(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """A random-but-realistic clip: smooth-ish pixels in [0, 1], Kinetics-normalised."""
    g = torch.Generator().manual_seed(seed)
    b, c, t, h, w = shape
    coarse = torch.rand(b, c, t, max(h // 8, 1), max(w // 8, 1), generator=g)
    pixels = torch.nn.functional.interpolate(coarse, size=(t, h, w), mode="trilinear", align_corners=False)
    pixels = (pixels + 0.1 * torch.rand(shape, generator=g)).clamp(0, 1)
    return (pixels - 0.45) / 0.225


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


BATCHED_EXPORTS = [(v, t, 16) for t in ("onnx", "executorch") for v in ("560m", "1g", "2g", "5g")]
"""The default run's shared exports (``test_export_parity``'s cases); made side by side, as
``vmf-export --jobs`` makes them, at the first request of any of them when that module is collected."""


@pytest.fixture(scope="session")
def shared_export(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """``shared_export(variant, target, frames=16)``: an ``ExportResult`` exported once per test session.

    Exports dominate the suite's time; the parity tests and vmf-predict's backend tests read the
    same artifacts. Tests that damage an artifact must copy it first. In a run that includes
    ``test_export_parity.py``, the first request of one of :data:`BATCHED_EXPORTS` exports them
    all in worker processes, one per core, so the two cores are both busy.
    """
    from vmf_deploy.export.errors import ExportError
    from vmf_deploy.export.parallel import default_jobs, run_exports

    out_dir = tmp_path_factory.mktemp("shared-exports")
    done: dict[tuple[str, str, int], object] = {}
    batched = any(item.path.name == "test_export_parity.py" for item in request.session.items)

    def get(variant: str, target: str, frames: int = 16):
        key = (variant, target, frames)
        if key not in done:
            keys = [k for k in BATCHED_EXPORTS if k not in done] if batched and key in BATCHED_EXPORTS else [key]
            outcomes = run_exports([(v, t) for v, t, _ in keys], {"out_dir": out_dir, "frames": frames},
                                   jobs=default_jobs(len(keys)))
            for k, outcome in zip(keys, outcomes):
                done[k] = outcome.result if outcome.result is not None else ExportError(outcome.error)
        if isinstance(done[key], ExportError):
            raise done[key]
        return done[key]

    return get


@pytest.fixture(scope="session")
def seeded_onnx():
    """``seeded_onnx(variant, **knobs)``: ``(model, proto)`` of a seeded 16-frame 32² model and its plain ONNX export.

    The export (dynamo exporter + onnxsim, no ONNX-stage rewrite) is made once per test session;
    the ONNX rewrite tests read the same graphs. Never modify the returned proto in place.
    """
    from onnx_helpers import export

    from vmf_deploy import build_seeded_model

    done: dict[tuple, tuple] = {}

    def get(variant: str, **knobs):
        key = (variant, tuple(sorted(knobs.items())))
        if key not in done:
            model = build_seeded_model(variant, frames=16, resolution=32, **knobs).eval()
            done[key] = (model, export(model, model.cfg.input_shape))
        return done[key]

    return get


TRAINED_FIXTURE = {"variant": "560m", "data": "synthetic", "frames": 16, "size": 48, "epochs": 4, "batch_size": 32,
                   "lr": 1.5e-3, "train_clips": 2560, "val_clips": 96}
"""The trained fixture's run: the trained reference's recipe (docs/train.md) cut to 4 epochs of 2560 clips,
about 3.5 minutes on the 2-core machine: far from the reference's accuracy, well above chance."""


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory: pytest.TempPathFactory):
    """A checkpoint of 560m trained on the synthetic dataset (TRAINED_FIXTURE): a model that looks at its input.

    The seeded init gives nearly the same logits for every clip, so precision and parity tests
    also run on this one. ``$VMF_TRAINED_CHECKPOINT`` names an existing run's checkpoint to reuse.
    """
    import os
    from pathlib import Path

    from vmf_deploy.train import TrainConfig, train

    if os.environ.get("VMF_TRAINED_CHECKPOINT"):
        return Path(os.environ["VMF_TRAINED_CHECKPOINT"])
    out = tmp_path_factory.mktemp("trained-fixture") / "run"
    result = train(TrainConfig(**TRAINED_FIXTURE, out=str(out)))
    assert not result.interrupted
    return result.last


TRAINED_EXPORTS = {
    "executorch-int8-qat": (("test_qat_distillation.py",), "executorch", "int8",
                            ("quantization.qat_steps=8", "quantization.qat_clips=8")),
    "executorch-int8": (("test_int8.py",), "executorch", "int8", ()),
    "openvino-int8": (("test_int8_openvino.py",), "openvino", "int8", ()),
    "executorch": (("test_cli_console.py", "test_int8.py", "test_jni_bridge.py", "test_val.py"), "executorch", "fp32",
                   ()),
    "onnx-int8": (("test_int8.py",), "onnx", "int8", ()),
    "onnx": (("test_int8.py", "test_onnxruntime_arm64.py", "test_parity_gate_refuses.py", "test_predict_ray.py",
              "test_val.py"), "onnx", "fp32", ()),
}
"""The trained fixture's exports (560m; int8 calibrated on 64 synthetic clips), by name: (the test modules that read
it, target, precision, ``--set`` overrides). ``run_exports`` starts the ExecuTorch ones (its slow target) first."""


@pytest.fixture(scope="session")
def trained_export(request: pytest.FixtureRequest, trained_checkpoint, tmp_path_factory: pytest.TempPathFactory):
    """``trained_export(name)``: the trained checkpoint's :data:`TRAINED_EXPORTS` export ``name`` (``ExportResult``).

    Each is made once per session. At the first request, every export whose test module is collected
    (and ``name``) is made by ``run_exports``, two at a time in worker processes, as ``vmf-export --jobs`` makes them.
    """
    from vmf_deploy.export.errors import ExportError
    from vmf_deploy.export.parallel import default_jobs, run_exports

    out_dir = tmp_path_factory.mktemp("trained-exports")
    collected = {item.path.name for item in request.session.items}
    done: dict[str, object] = {}

    def get(name: str):
        if name not in done:
            names = [n for n, (modules, *_) in TRAINED_EXPORTS.items()
                     if n not in done and (n == name or not collected.isdisjoint(modules))]
            cells, cell_options = [], []
            for n in names:
                _, target, precision, overrides = TRAINED_EXPORTS[n]
                cells.append(("560m", target))
                cell_options.append({"out_dir": out_dir / n, "precision": precision, "recipe_overrides": overrides,
                                     "calibration": "synthetic" if precision == "int8" else None})
            outcomes = run_exports(cells, {"checkpoint": trained_checkpoint}, jobs=default_jobs(len(cells)),
                                   processes=True, cell_options=cell_options)
            for n, outcome in zip(names, outcomes, strict=True):
                done[n] = outcome.result if outcome.result is not None else ExportError(outcome.error)
        if isinstance(done[name], ExportError):
            raise done[name]
        return done[name]

    return get


@pytest.fixture(scope="session")
def native_build_dir(tmp_path_factory: pytest.TempPathFactory):
    """runtimes/ configured and built from scratch (with its C++ unit tests) in a fresh folder, once per session."""
    from vmf_deploy.native_build import build_runtime

    folder = tmp_path_factory.mktemp("runtimes-build")
    build_runtime(folder, tests=True, jobs=2)
    return folder


@pytest.fixture(scope="session")
def aarch64_build_dir():
    """runtimes/ cross-built for aarch64 (vmf_run + C++ unit tests) in runtimes/build-aarch64, once per session.

    The build is incremental (a clean CI clone builds it from scratch); the aarch64 executorch wheel
    is cached outside the tree (``$VMF_CACHE``, else ``~/.cache/vmf-deploy``).
    """
    from vmf_deploy.cross_build import AARCH64_BUILD_DIR
    from vmf_deploy.native_build import build_runtime

    build_runtime(AARCH64_BUILD_DIR, tests=True, jobs=2, arch="aarch64")
    return AARCH64_BUILD_DIR


@pytest.fixture(scope="session")
def arm64_userland():
    """The aarch64 CPython userland ``onnxruntime-arm64`` runs in, built once (about 90 s) or reused from the cache.

    It lives in ``$VMF_CACHE/arm64-userland`` (else ``~/.cache/vmf-deploy/arm64-userland``), where the
    runner looks for it; building needs root, debootstrap and qemu-user-static (``.ci/run`` installs them).
    """
    from vmf_deploy.arm64.userland import build_userland

    return build_userland(progress=lambda _: None)
