"""Helpers shared by the command-line tools: variant lists and clean failure."""

from __future__ import annotations

from typing import NoReturn


def resolve_variants(names: list[str]) -> list[str]:
    """Expand ``all`` and validate every name against the registry (imports torch: call after parsing)."""
    from ..models import list_models
    from ..models.registry import unknown_model_error

    out: list[str] = []
    for name in names:
        if name == "all":
            out.extend(list_models())
        elif name in list_models():
            out.append(name)
        else:
            raise unknown_model_error(name)
    return list(dict.fromkeys(out))


def fail(prog: str, message: str, code: int = 2) -> NoReturn:
    """Print ``prog: error: message`` to the console's stderr and exit with ``code``.

    The console's, not ``sys.stderr``: inside :func:`~vmf_deploy.cli.quiet.libraries_quiet`,
    ``sys.stderr`` is the libraries' log.
    """
    from .quiet import console_streams

    print(f"{prog}: error: {message}", file=console_streams()[1])
    raise SystemExit(code)
