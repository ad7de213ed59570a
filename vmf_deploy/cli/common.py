"""Helpers shared by the command-line tools: variant lists, output paths checked up front, clean failure."""

from __future__ import annotations

from pathlib import Path
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


def output_file_problem(flag: str, path: str | Path, example: str) -> str | None:
    """Why the file ``path`` that ``flag`` names cannot be written, else None.

    Checked before any work, so that a long run does not end in a traceback at its last step.
    ``example`` is a file name to suggest when ``path`` is a folder.
    """
    path = Path(path)
    if path.is_dir():
        return f"{flag} {path} is a folder; pass a file path, e.g. {path / example}"
    parent = path.resolve().parent
    if parent.exists() and not parent.is_dir():
        return f"{flag} {path}: {parent} is a file, not a folder"
    if not parent.exists():
        return f"{flag} {path}: its folder {parent} does not exist; create it first"
    return None


def output_folder_problem(flag: str, path: str | Path) -> str | None:
    """Why ``path`` cannot be the output folder ``flag`` names (it, or a folder above it, is a file), else None."""
    path = Path(path)
    existing = next(p for p in (path, *path.resolve().parents) if p.exists())
    if existing.is_dir():
        return None
    if existing == path:
        return f"{flag} {path} is a file; pass a folder"
    return f"{flag} {path}: {existing} is a file, not a folder"


def fail(prog: str, message: str, code: int = 2) -> NoReturn:
    """Print ``prog: error: message`` to the console's stderr and exit with ``code``.

    The console's, not ``sys.stderr``: inside :func:`~vmf_deploy.cli.quiet.libraries_quiet`,
    ``sys.stderr`` is the libraries' log.
    """
    from .quiet import console_streams

    print(f"{prog}: error: {message}", file=console_streams()[1])
    raise SystemExit(code)
