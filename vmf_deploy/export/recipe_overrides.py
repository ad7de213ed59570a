"""``vmf-export --set TABLE.KEY=VALUE``: change one recipe value for one export without copying the recipe file.

The path names a table of the recipe and a key in it, the way the TOML file nests them::

    --set quantization.qat_steps=2048
    --set 'quantization.fp32_modules=["blocks.0.mobile"]'
    --set parity.tolerance.int8.min_top1_agreement=0.99

VALUE is a TOML value; a bare word that TOML cannot read (``weight_only_int8``) is taken as a string, as
Ultralytics' and Hydra's ``key=value`` overrides do. The edited recipe is validated like a file, so an unknown key
or a wrong type is refused with the recipe's own message, and the manifest records the overrides beside the values
they produced. Standard library only: the CLI checks the syntax before anything heavy is imported.
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vmf_deploy.export.errors import ExportError

_PART = re.compile(r"[A-Za-z0-9_-]+")
_BARE_WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")


@dataclass(frozen=True)
class RecipeOverride:
    """One ``--set``: the table path and key, the parsed value, and the text as given (for messages and manifests)."""

    path: tuple[str, ...]
    value: Any
    text: str


def parse_override(text: str) -> RecipeOverride:
    """Parse ``TABLE.KEY=VALUE`` (ExportError naming the problem and the expected form)."""
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    path = tuple(key.split("."))
    if not sep or not raw or len(path) < 2 or not all(_PART.fullmatch(p) for p in path):
        raise ExportError(f"--set {text!r} is not TABLE.KEY=VALUE: name a recipe table and a key in it, e.g. "
                          "--set quantization.qat_steps=2048 or --set parity.tolerance.int8.min_top1_agreement=0.99")
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        if not _BARE_WORD.fullmatch(raw):
            raise ExportError(f"--set {text!r}: {raw!r} is not a TOML value; quote text (key='\"a b\"') and write "
                              "lists as key='[\"a\", \"b\"]'") from None
        value = raw
    return RecipeOverride(path, value, f"{key}={raw}")


def apply_overrides(data: dict[str, Any], overrides: Sequence[RecipeOverride], recipe: str) -> dict[str, Any]:
    """A copy of the loaded recipe ``data`` with each override's key set; ``recipe`` names the file in errors.

    Each override must land in a table the recipe has; whether the key and value are valid is left to the
    recipe's validation, which lists the known keys.
    """
    data = copy.deepcopy(data)
    for override in overrides:
        node = data
        for depth, part in enumerate(override.path[:-1], start=1):
            node = node.get(part)
            if not isinstance(node, dict):
                table = ".".join(override.path[:depth])
                raise ExportError(f"--set {override.text}: recipe {recipe} has no [{table}] table; its tables: "
                                  f"{', '.join(_tables(data)) or 'none'}")
        if isinstance(node.get(override.path[-1]), dict):
            raise ExportError(f"--set {override.text}: [{'.'.join(override.path)}] is a table of recipe {recipe}; "
                              "set one of its keys")
        node[override.path[-1]] = override.value
    return data


def _tables(data: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted names of every table in ``data``, outermost first."""
    names = []
    for key, value in data.items():
        if isinstance(value, dict):
            names.append(prefix + key)
            names += _tables(value, f"{prefix}{key}.")
    return names
