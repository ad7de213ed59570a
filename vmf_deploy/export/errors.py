"""The one exception type every export step raises for a user-facing failure."""


class ExportError(RuntimeError):
    """An export could not be completed; the message is one paragraph a user can act on.

    Raised for bad input (unknown variant or target, invalid recipe, unwritable output
    directory), exporter failures (with the failing op and the recipe key to change) and
    parity-gate refusals. The CLI prints the message without a traceback and exits non-zero.
    """


_OP_PATTERNS = (
    r"OpOverload\(op='([\w.:]+)'",                     # torch.onnx dispatch errors
    r"target=torch\.ops\.([\w.]+)",                      # torch.fx node in a conversion error
    r"Unsupported fx node \w+, kind ([\w:.]+)",          # coremltools torch.export frontend
    r"convert function for op '([\w:.]+)' not implemented",  # coremltools op registry
    r"operator ([\w:.]+) is not supported",              # generic exporter phrasing
)


def failing_op(exc: BaseException) -> str | None:
    """The op an exporter names in its error message (``aten.foo.default``, ``ns::op``), if any."""
    import re

    text = str(exc)
    for pattern in _OP_PATTERNS:
        match = re.search(pattern, text)
        if match:
            return match.group(1)
    return None


def exporter_failure(target: str, exc: BaseException, recipe_key: str) -> ExportError:
    """Turn an exporter's exception into one paragraph: the failing op, the reason, the recipe key to change.

    ``recipe_key`` is where a user changes the behaviour, e.g. ``export/onnx.toml [onnx].opset``.
    """
    op = failing_op(exc)
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    reason = next((ln for ln in lines if "Error" in ln and ":" in ln and "summary" not in ln.lower()),
                  lines[0] if lines else type(exc).__name__)
    where = f"at op {op}" if op else f"({type(exc).__name__})"
    return ExportError(
        f"{target} export failed {where}: {reason[:400]}. The {target} exporter cannot translate this op as "
        f"configured: change {recipe_key} (or pass --recipe FILE with another value), or export with --no-fuse "
        f"if the op comes from a fusion rewrite.")
