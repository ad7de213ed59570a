"""vmf-deploy: export, verify, benchmark and ship Video Mobile-Former.

The public names are imported on first use (PEP 562), so ``import vmf_deploy`` and the CLIs'
``--help`` do not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "CheckpointError": ".checkpoint", "load_checkpoint": ".checkpoint", "save_checkpoint": ".checkpoint",
    "count_flops": ".counting", "count_params": ".counting",
    "ConfigError": ".models", "VMFConfig": ".models", "build_model": ".models", "build_seeded_model": ".models",
    "get_config": ".models", "list_models": ".models",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    """Import a public name's module the first time the name is used."""
    if name not in _LAZY:
        raise AttributeError(f"module 'vmf_deploy' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value
