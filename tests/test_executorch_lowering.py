"""Real ExecuTorch lowering: 560m → .pte, 100% compute delegated, runner parity; loud failure on fallback."""

from __future__ import annotations

import copy
import io
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from vmf_deploy import build_seeded_model
from vmf_deploy.export.errors import ExportError
from vmf_deploy.parity import compare_logits, parity_clips
from vmf_deploy.runners import RunnerError, get_runner

pytest.importorskip("executorch")

RECIPE = tomllib.loads((Path(__file__).resolve().parent.parent / "export" / "executorch.toml").read_text())


@pytest.fixture(scope="module")
def lowered_560m(shared_export):
    """The session's 560m 16-frame ExecuTorch export (``lower_to_executorch`` inside ``export_model``)."""
    result = shared_export("560m", "executorch", 16)
    return build_seeded_model("560m", frames=16), result.manifest["export"], result.artifact


def test_560m_delegates_all_compute_to_xnnpack(lowered_560m) -> None:
    _, export, path = lowered_560m
    summary = export["delegation"]
    assert summary["compute_ops_delegated_pct"] == 100.0
    assert summary["compute_ops"]["portable"] == 0 and summary["compute_ops"]["delegated"] > 50
    assert summary["by_op"]["aten.convolution.default"]["portable"] == 0
    assert summary["portable_ops"] == 0, {op: c for op, c in summary["by_op"].items() if c["portable"]}
    assert summary["delegated_subgraphs"] == 1
    assert {r["name"] for r in export["rewrites"]} >= {"fold_batchnorm", "frames_to_batch"}
    assert path.stat().st_size > 1_000_000


def test_560m_pte_matches_pytorch(lowered_560m) -> None:
    model, _, path = lowered_560m
    runner = get_runner("executorch-xnnpack", threads=2)
    runner.load(path)
    clips = parity_clips(model.cfg.input_shape, [0, 1, 2])
    with torch.no_grad():
        reference = [model(torch.from_numpy(c)).numpy() for c in clips]
    report = compare_logits(reference, [runner.run(c) for c in clips])
    assert report.max_rel_error < 1e-4 and report.top1_agreement == 1.0 and report.min_cosine > 0.99999
    with pytest.raises(RunnerError, match="exported for input"):
        runner.run(np.zeros((1, 3, 8, 172, 172), np.float32))
    runner.close()


def test_runner_reports_a_missing_or_corrupt_program(tmp_path: Path) -> None:
    runner = get_runner("executorch-xnnpack")
    with pytest.raises(RunnerError, match="does not exist"):
        runner.load(tmp_path / "missing.pte")
    bad = tmp_path / "bad.pte"
    bad.write_bytes(b"not a flatbuffer" * 64)
    with pytest.raises(RunnerError, match="could not load"):
        runner.load(bad)


def test_the_runner_runs_a_program_without_importing_the_export_compiler(lowered_560m) -> None:
    """``executorch.exir`` (seconds to import) is the compiler; an app, and this runner, need only the bindings."""
    _, _, path = lowered_560m
    clip = parity_clips((1, 3, 16, 172, 172), [0])[0]
    runner = get_runner("executorch-xnnpack")
    runner.load(path)
    expected = runner.run(clip)
    runner.close()
    script = (
        "import sys, numpy as np\n"
        "from vmf_deploy.parity import parity_clips\n"
        "from vmf_deploy.runners import get_runner\n"
        "runner = get_runner('executorch-xnnpack')\n"
        f"runner.load({str(path)!r})\n"
        "np.save(sys.stdout.buffer, runner.run(parity_clips((1, 3, 16, 172, 172), [0])[0]))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('executorch.exir', 'torchao'))), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stderr.decode().strip().splitlines()[-1] == "[]"
    np.testing.assert_array_equal(np.load(io.BytesIO(done.stdout)), expected)


def test_a_program_without_forward_is_refused_naming_its_methods(tmp_path: Path) -> None:
    from executorch.exir import to_edge

    program = to_edge({"encode": torch.export.export(nn.Linear(4, 2), (torch.zeros(1, 4),))}).to_executorch()
    path = tmp_path / "encode.pte"
    path.write_bytes(program.buffer)
    with pytest.raises(RunnerError, match=r"has no 'forward' method \(methods: \['encode'\]\)"):
        get_runner("executorch-xnnpack").load(path)


class _Clip3D(nn.Module):
    """A Conv3d network with no frames converter: lowered without rewrites, its conv cannot be delegated."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean(dim=(2, 3, 4))


def test_require_full_delegation_fails_loudly_on_a_conv3d(monkeypatch: pytest.MonkeyPatch) -> None:
    import vmf_deploy.rewrites as rewrites
    from vmf_deploy.export.executorch_export import lower_to_executorch

    monkeypatch.setattr(rewrites, "run_rewrites", lambda target, stage, obj, fuse=True: (obj, []))
    with pytest.raises(ExportError, match=r"aten\.convolution\.default ×1.*require_full_delegation = false"):
        lower_to_executorch(_Clip3D().eval(), torch.zeros(1, 3, 4, 8, 8), RECIPE)


def test_recipe_keys_are_validated() -> None:
    from vmf_deploy.export.executorch_export import lower_to_executorch

    bad = copy.deepcopy(RECIPE)
    bad["executorch"]["memory_planning"] = "clever"
    with pytest.raises(ExportError, match="memory_planning must be"):
        lower_to_executorch(_Clip3D().eval(), torch.zeros(1, 3, 4, 8, 8), bad)
    bad = copy.deepcopy(RECIPE)
    bad["executorch"]["partitioner_typo"] = "xnnpack"
    with pytest.raises(ExportError, match="partitioner_typo is not a known key"):
        lower_to_executorch(_Clip3D().eval(), torch.zeros(1, 3, 4, 8, 8), bad)
