"""Edits of a default recipe that its validation must refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmf_deploy.export.errors import ExportError
from vmf_deploy.export.recipes import RECIPES_DIR, load_recipe
from vmf_deploy.export.targets import get_target


def assert_edits_refused(target: str, edits: list[tuple[str, str, str]], folder: Path) -> None:
    """Each ``(old, new, match)`` edit of ``export/<target>.toml`` makes ``load_recipe`` raise an error matching ``match``."""
    text = (RECIPES_DIR / f"{target}.toml").read_text()
    for old, new, match in edits:
        assert old in text, f"the {target} recipe no longer has {old!r}: update this case"
        path = folder / f"{target}-edited.toml"
        path.write_text(text.replace(old, new))
        with pytest.raises(ExportError, match=match):
            load_recipe(get_target(target), path)
