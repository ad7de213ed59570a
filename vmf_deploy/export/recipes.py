"""Export recipes: one declarative TOML file per target under the repository's ``export/`` folder.

A recipe has three parts::

    target = "onnx"                 # which --target it is for
    [onnx]                          # the target's own options (table named after the target)
    opset = 18
    [parity]                        # how the parity gate runs and what it accepts
    runtime = "onnxruntime-cpu"
    seeds = [0, 1, 2]
    synthetic_clips = 6             # + clips of the procedural action dataset
    [parity.tolerance.fp32]         # one table per precision the recipe supports
    max_rel_error = 1e-4
    min_top1_agreement = 1.0
    min_centered_sqnr_db = 60.0
    [quantization]                  # optional: how --precision int8 quantizes (QUANTIZATION_KEYS)
    calibration_clips = 64

Every key is validated here, and an error names the file and the key. A target's table
is checked against :data:`TARGET_KEYS`, or by its lowering's own validator
(:data:`TARGET_VALIDATORS`: the ``executorch`` table).
"""

from __future__ import annotations

import importlib
import math
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import vmf_deploy
from vmf_deploy.export.errors import ExportError
from vmf_deploy.export.recipe_overrides import apply_overrides, parse_override
from vmf_deploy.export.targets import Target
from vmf_deploy.parity import SQNR_CAP_DB, ParityTolerance
from vmf_deploy.preprocess import LAYOUTS

RECIPES_DIR = Path(vmf_deploy.__file__).resolve().parent.parent / "export"
"""The repository's ``export/`` folder holding the default recipes."""

MIN_PARITY_SEEDS = 3
DEFAULT_SYNTHETIC_CLIPS = 6
"""``[parity].synthetic_clips`` when a recipe does not set it."""
DEFAULT_HELDOUT_CLIPS = 240
"""``[parity].heldout_clips`` when a recipe does not set it: labelled clips an int8 artifact is judged on."""

Check = Callable[[Any], bool]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def _one_of(*values: str) -> tuple[Check, str]:
    return (lambda v: v in values), "one of " + ", ".join(repr(x) for x in values)


def _int_range(lo: int, hi: int) -> tuple[Check, str]:
    return (lambda v: _is_int(v) and lo <= v <= hi), f"an integer from {lo} to {hi}"


def _str_list() -> tuple[Check, str]:
    return (lambda v: isinstance(v, list) and all(isinstance(x, str) and x for x in v)), "a list of strings"


_BOOL: tuple[Check, str] = (_is_bool, "true or false")
_FRACTION: tuple[Check, str] = ((lambda v: isinstance(v, (int, float)) and not _is_bool(v) and 0 <= v <= 1),
                                "a number from 0 to 1")

COREML_DEPLOYMENT_TARGETS = ("iOS15", "iOS16", "iOS17", "iOS18", "macOS12", "macOS13", "macOS14", "macOS15")
COREML_COMPUTE_UNITS = ("ALL", "CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE")
ONNX_BRIDGE_FORMS = ("channels-first", "attention")
"""Values of ``[onnx] bridges``: the keys of ``vmf_deploy.rewrites.ALTERNATIVES["bridges"]`` (kept torch-free here)."""

OPENVINO_PRECISION_HINTS = ("f32", "bf16", "f16")
"""Values of ``[openvino] precision_hint`` (OpenVINO's ``INFERENCE_PRECISION_HINT``)."""
OPENVINO_PERFORMANCE_HINTS = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")
"""Values of ``[openvino] performance_hint`` (OpenVINO's ``PERFORMANCE_HINT``)."""

TARGET_KEYS: dict[str, dict[str, tuple[Check, str]]] = {
    "onnx": {
        "opset": _int_range(18, 28),
        "simplify": _BOOL,
        "check": _BOOL,
        "bridges": _one_of(*ONNX_BRIDGE_FORMS),
    },
    "coreml": {
        "convert_to": _one_of("mlprogram"),
        "minimum_deployment_target": _one_of(*COREML_DEPLOYMENT_TARGETS),
        "compute_units": _one_of(*COREML_COMPUTE_UNITS),
        "compute_precision": _one_of("fp32", "fp16"),
        "fp32_modules": _str_list(),
    },
    "openvino": {
        "onnx_opset": _int_range(18, 23),
        "precision_hint": _one_of(*OPENVINO_PRECISION_HINTS),
        "performance_hint": _one_of(*OPENVINO_PERFORMANCE_HINTS),
        "num_streams": _int_range(1, 64),
        "inference_num_threads": _int_range(0, 1024),
        "input_layout": _one_of(*LAYOUTS),
    },
}
"""Allowed keys of each target's table: key → (check, what a valid value is)."""
TARGET_VALIDATORS: dict[str, str] = {
    "executorch": "executorch_export:executorch_options",
}
"""Targets whose lowering validates its own table: ``"module:function"`` under ``vmf_deploy.export``."""

_CLIPS: tuple[Check, str] = ((lambda v: _is_int(v) and 1 <= v <= 100_000), "an integer from 1 to 100000")
_LEARNING_RATE: tuple[Check, str] = ((lambda v: isinstance(v, (int, float)) and not _is_bool(v) and 0 < v < 1),
                                    "a number above 0 and below 1")
QUANTIZATION_KEYS: dict[str, dict[str, tuple[Check, str]]] = {
    "onnx": {
        "scheme": _one_of("qdq"),
        "activations": _one_of("uint8", "int8"),
        "weights": _one_of("int8"),
        "per_channel": _BOOL,
        "reduce_range": _BOOL,
        "calibration_method": _one_of("minmax", "entropy", "percentile"),
        "calibration_clips": _CLIPS,
        "fp32_op_types": _str_list(),
        "fp32_attention_matmuls": _BOOL,
        "fp32_modules": _str_list(),
        "fp32_module_weights": _one_of("int8", "fp32"),
        "fp32_outputs": _BOOL,
        "banded_depthwise": _BOOL,
        "equalize_channels": _FRACTION,
    },
    "executorch": {
        "scheme": _one_of("pt2e-xnnpack"),
        "per_channel": _BOOL,
        "calibration_method": _one_of("minmax", "histogram"),
        "calibration_clips": _CLIPS,
        "fp32_op_types": _str_list(),
        "fp32_modules": _str_list(),
        "fp32_outputs": _BOOL,
        "kept_linears": _one_of("dynamic_int8", "weight_only_int8", "fp32"),
        "fp32_output_weights": _one_of("int8", "fp32"),
        "dyrelu_application": _one_of("fp32", "int8"),
        "quantize_input": _BOOL,
        "equalize_channels": _FRACTION,
        "qat_steps": _int_range(0, 1_000_000),
        "qat_clips": _CLIPS,
        "qat_learning_rate": _LEARNING_RATE,
    },
    "openvino": {
        "scheme": _one_of("nncf-ptq"),
        "preset": _one_of("performance", "mixed"),
        "per_channel": _BOOL,
        "overflow_fix": _one_of("enable", "first_layer_only", "disable"),
        "calibration_method": _one_of("minmax", "mean_minmax", "mean_quantile", "histogram"),
        "fast_bias_correction": _BOOL,
        "calibration_clips": _CLIPS,
        "fp32_op_types": _str_list(),
        "fp32_attention_matmuls": _BOOL,
        "fp32_modules": _str_list(),
        "fp32_module_weights": _one_of("int8", "fp32"),
        "equalize_channels": _FRACTION,
    },
    "coreml": {
        "weights": _one_of("linear-int8"),
        "granularity": _one_of("per_channel", "per_tensor"),
        "palettize_mode": _one_of("kmeans", "uniform"),
    },
}
"""Allowed keys of each target's ``[quantization]`` table (all required when the table is present)."""

TOLERANCE_KEYS: dict[str, tuple[Check, str]] = {
    "max_rel_error": ((lambda v: isinstance(v, (int, float)) and not _is_bool(v) and 0 <= v < math.inf),
                      "a finite number >= 0"),
    "min_top1_agreement": ((lambda v: isinstance(v, (int, float)) and not _is_bool(v) and 0 <= v <= 1),
                           "a number from 0 to 1"),
    "min_cosine": ((lambda v: isinstance(v, (int, float)) and not _is_bool(v) and -1 <= v <= 1),
                   "a number from -1 to 1"),
    "min_centered_sqnr_db": ((lambda v: isinstance(v, (int, float)) and not _is_bool(v)
                              and -SQNR_CAP_DB <= v <= SQNR_CAP_DB),
                             f"a number of dB from {-SQNR_CAP_DB:g} to {SQNR_CAP_DB:g}"),
    "max_spread_rel_error": ((lambda v: isinstance(v, (int, float)) and not _is_bool(v) and 0 <= v < math.inf),
                             "a finite number >= 0"),
    "max_accuracy_drop": ((lambda v: isinstance(v, (int, float)) and not _is_bool(v) and 0 <= v <= 1),
                          "a fraction from 0 to 1 (0.01 = one point of top-1 accuracy)"),
}


@dataclass(frozen=True)
class Recipe:
    """A validated recipe.

    Attributes:
        path: the file it was read from.
        target: the target it is for.
        options: the target's table (e.g. ``opset``), as written.
        runtime: the runner backend the parity gate uses.
        seeds: seeds of the parity clips (at least three).
        synthetic_clips: how many clips of the procedural action dataset the gate adds.
        heldout_clips: how many labelled held-out clips a quantized artifact is judged on instead.
        tolerances: precision → the tolerance the gate applies at that precision.
        quantization: the ``[quantization]`` table (empty when the recipe has none).
        data: the whole file as loaded, with ``overrides`` applied (recorded in the manifest).
        overrides: the ``--set TABLE.KEY=VALUE`` texts applied to the file, in order.
    """

    path: Path
    target: str
    options: dict[str, Any]
    runtime: str
    seeds: tuple[int, ...]
    synthetic_clips: int = DEFAULT_SYNTHETIC_CLIPS
    heldout_clips: int = DEFAULT_HELDOUT_CLIPS
    tolerances: dict[str, ParityTolerance] = field(default_factory=dict)
    quantization: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        """The file, and the ``--set`` overrides applied to it, as error messages name them."""
        return describe_source(self.path, self.overrides)

    def tolerance(self, precision: str) -> ParityTolerance:
        """The gate's tolerance at ``precision`` (ExportError naming the missing table)."""
        if precision not in self.tolerances:
            raise ExportError(
                f"recipe {self.path} has no [parity.tolerance.{precision}] table, so a {precision} {self.target} "
                f"export has nothing to be checked against; add that table (keys: {', '.join(TOLERANCE_KEYS)}) "
                f"or export with --precision {', '.join(self.tolerances) or 'fp32'}")
        return self.tolerances[precision]

    def tolerance_key(self, precision: str) -> str:
        """Where the tolerance of ``precision`` lives, for error messages (``file [table]``, and the ``--set``
        overrides applied to the file)."""
        return f"{self.source} [parity.tolerance.{precision}]"


def describe_source(path: Path, overrides: Sequence[str]) -> str:
    """``path``, followed by the ``--set`` overrides applied to it, if any."""
    return f"{path} with --set {', '.join(overrides)}" if overrides else str(path)


def default_recipe_path(target: Target) -> Path:
    """The default recipe file of ``target``."""
    return RECIPES_DIR / target.recipe_file


def load_recipe(target: Target, path: str | Path | None = None, overrides: Sequence[str] = ()) -> Recipe:
    """Read and validate the recipe of ``target`` (its default file, or ``path`` from ``--recipe``), with the
    ``--set TABLE.KEY=VALUE`` ``overrides`` applied in order."""
    path = Path(path) if path is not None else default_recipe_path(target)
    if not path.is_file():
        hint = ("pass an existing file to --recipe" if path != default_recipe_path(target) else
                f"the default recipes live in {RECIPES_DIR}; restore {target.recipe_file} from the repository "
                "or pass --recipe FILE")
        raise ExportError(f"recipe {path} for target {target.name!r} not found: {hint}")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ExportError(f"recipe {path} is not valid TOML ({e}); fix the file or pass another with --recipe") from None
    if overrides:
        parsed = [parse_override(text) for text in overrides]
        data = apply_overrides(data, parsed, str(path))
        return validate_recipe(data, target, path, tuple(o.text for o in parsed))
    return validate_recipe(data, target, path)


def validate_recipe(data: dict[str, Any], target: Target, path: Path, overrides: tuple[str, ...] = ()) -> Recipe:
    """Check a loaded recipe dict for ``target``; every error names ``path`` (and the ``--set`` ``overrides``
    applied to it) and the key."""
    source = describe_source(path, overrides)
    fix = "fix the --set value, edit the file" if overrides else "edit the file"

    def bad(key: str, problem: str) -> ExportError:
        return ExportError(f"recipe {source}: {key} {problem}; {fix} or pass another with --recipe")

    if data.get("target") != target.name:
        raise bad("target", f"is {data.get('target')!r} but this export is for target {target.name!r} "
                            f"(set target = \"{target.name}\")")
    unknown = sorted(set(data) - {"target", target.name, "parity", "quantization"})
    if unknown:
        raise bad(f"{unknown}", f"are not recipe keys (allowed: target, [{target.name}], [parity], [quantization])")
    options = data.get(target.name, {})
    if not isinstance(options, dict):
        raise bad(f"[{target.name}]", "must be a table")
    spec = TARGET_KEYS.get(target.name)  # None: the target's lowering validates its own table
    if spec is not None:
        _check_table(options, spec, f"[{target.name}]", bad)

    parity = data.get("parity")
    if not isinstance(parity, dict):
        raise bad("[parity]", "is missing (it needs runtime, seeds and [parity.tolerance.<precision>] tables)")
    unknown = sorted(set(parity) - {"runtime", "seeds", "synthetic_clips", "heldout_clips", "tolerance"})
    if unknown:
        raise bad(f"[parity] keys {unknown}", "are unknown (allowed: runtime, seeds, synthetic_clips, "
                                              "heldout_clips, tolerance)")
    runtime = parity.get("runtime")
    from vmf_deploy.runners import BACKENDS

    if runtime not in BACKENDS:
        raise bad("[parity].runtime", f"must be one of {', '.join(BACKENDS)}, got {runtime!r}")
    seeds = parity.get("seeds")
    if (not isinstance(seeds, list) or len(seeds) < MIN_PARITY_SEEDS or len(set(seeds)) != len(seeds)
            or not all(_is_int(s) and s >= 0 for s in seeds)):
        raise bad("[parity].seeds", f"must be a list of at least {MIN_PARITY_SEEDS} distinct integers >= 0, "
                                    f"got {seeds!r}")
    synthetic = parity.get("synthetic_clips", DEFAULT_SYNTHETIC_CLIPS)
    if not _is_int(synthetic) or synthetic < 0:
        raise bad("[parity].synthetic_clips", f"must be an integer >= 0, got {synthetic!r}")
    heldout = parity.get("heldout_clips", DEFAULT_HELDOUT_CLIPS)
    if not _is_int(heldout) or heldout < 2:
        raise bad("[parity].heldout_clips", f"must be an integer >= 2, got {heldout!r}")
    tables = parity.get("tolerance")
    if not isinstance(tables, dict) or not tables:
        raise bad("[parity.tolerance]", "must hold one table per precision, e.g. [parity.tolerance.fp32]")
    tolerances = {}
    for precision, table in tables.items():
        key = f"[parity.tolerance.{precision}]"
        if precision not in target.precisions:
            raise bad(key, f"names a precision target {target.name!r} cannot produce "
                           f"(it can: {', '.join(target.precisions)})")
        if not isinstance(table, dict):
            raise bad(key, "must be a table")
        for name, value in table.items():
            if name not in TOLERANCE_KEYS:
                raise bad(f"{key}.{name}", f"is not a tolerance key (known: {', '.join(TOLERANCE_KEYS)})")
            check, expected = TOLERANCE_KEYS[name]
            if not check(value):
                raise bad(f"{key}.{name}", f"must be {expected}, got {value!r}")
        if "max_rel_error" not in table or "min_top1_agreement" not in table:
            raise bad(key, "needs max_rel_error and min_top1_agreement")
        tolerances[precision] = ParityTolerance(**{k: float(v) for k, v in table.items()})
    quantization = _check_table(data.get("quantization"), QUANTIZATION_KEYS.get(target.name), "[quantization]", bad)
    recipe = Recipe(path=path, target=target.name, options=dict(options), runtime=runtime, seeds=tuple(seeds),
                    synthetic_clips=synthetic, heldout_clips=heldout, tolerances=tolerances,
                    quantization=quantization, data=data, overrides=overrides)
    if spec is None and target.name in TARGET_VALIDATORS:
        module, function = TARGET_VALIDATORS[target.name].split(":")
        getattr(importlib.import_module(f"vmf_deploy.export.{module}"), function)(recipe)
    return recipe


def _check_table(table: Any, spec: dict[str, tuple[Check, str]] | None, name: str,
                 bad: Callable[[str, str], ExportError]) -> dict[str, Any]:
    """Validate an optional table against ``spec`` (every key required); ``{}`` when absent."""
    if table is None:
        return {}
    if spec is None:
        raise bad(name, "is not supported by this target")
    if not isinstance(table, dict):
        raise bad(name, "must be a table")
    for key, value in table.items():
        if key not in spec:
            raise bad(f"{name}.{key}", f"is not a known key (known: {', '.join(spec)})")
        check, expected = spec[key]
        if not check(value):
            raise bad(f"{name}.{key}", f"must be {expected}, got {value!r}")
    missing = sorted(set(spec) - set(table))
    if missing:
        raise bad(name, f"lacks {missing}")
    return dict(table)


def accept_any_parity(target: Target, precision: str, folder: Path) -> Path:
    """A copy of ``target``'s default recipe whose ``precision`` tolerance accepts any output, written in ``folder``.

    For measuring the latency of an artifact whose parity cannot mean anything, such as an int8
    export of the seeded init (its logits barely vary between clips, so int8 noise swamps them);
    the parity is still measured and recorded.
    """
    data = tomllib.loads(default_recipe_path(target).read_text())
    data["parity"]["tolerance"][precision] = {"max_rel_error": 1e9, "min_top1_agreement": 0.0}
    lines = [f"target = {toml_literal(data['target'])}"]
    for table, values in ((target.name, data.get(target.name, {})), ("quantization", data.get("quantization"))):
        if values:
            lines += [f"[{table}]"] + [f"{k} = {toml_literal(v)}" for k, v in values.items()]
    parity = data["parity"]
    lines += ["[parity]"] + [f"{k} = {toml_literal(v)}" for k, v in parity.items() if k != "tolerance"]
    for name, table in parity["tolerance"].items():
        lines += [f"[parity.tolerance.{name}]"] + [f"{k} = {toml_literal(v)}" for k, v in table.items()]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{target.name}-{precision}-any-parity.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


RECORD_ONLY_KEYS = ("file", "overrides")
"""Keys of a manifest's ``export.recipe`` record that say where the recipe came from, not what it holds."""


def recipe_record(recipe: Recipe) -> dict[str, Any]:
    """The recipe as a manifest records it: its file, the ``--set`` overrides (if any) and the values applied."""
    return {"file": str(recipe.path), **({"overrides": list(recipe.overrides)} if recipe.overrides else {}),
            **recipe.data}


def recipe_from_record(record: dict[str, Any], target: Target) -> Recipe:
    """The validated recipe a manifest's ``export.recipe`` record describes (the values it was exported with)."""
    data = {k: v for k, v in record.items() if k not in RECORD_ONLY_KEYS}
    return validate_recipe(data, target, Path(record.get("file", "recipe")), tuple(record.get("overrides", ())))


def toml_literal(value: Any) -> str:
    """A TOML literal of a recipe value (str, bool, number or a list of them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    return repr(value)
