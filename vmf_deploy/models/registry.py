"""Model registry: ``build_model(name, **overrides)`` builds any registered variant.

Mirrors timm's ``create_model``: each variant is a config plus a registered
constructor; overrides are ablation knobs validated by the config.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from .config import ConfigError

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
_CONFIGS: dict[str, Any] = {}


def register_model(name: str, config: Any) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register ``fn(config) -> nn.Module`` under ``name`` with its default ``config``."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _BUILDERS:
            raise ValueError(f"model {name!r} registered twice")
        _BUILDERS[name] = fn
        _CONFIGS[name] = config
        return fn

    return wrap


def list_models() -> list[str]:
    """Names of every registered model, in registration order."""
    return list(_BUILDERS)


def unknown_model_error(name: str) -> ConfigError:
    """The error for an unknown variant name, listing the valid ones."""
    return ConfigError(f"unknown variant {name!r}; valid variants: {', '.join(list_models())}")


def get_config(name: str, **overrides: Any) -> Any:
    """The config of ``name`` with ``overrides`` applied and validated."""
    if name not in _CONFIGS:
        raise unknown_model_error(name)
    cfg = _CONFIGS[name]
    return cfg.replace(**overrides) if overrides else cfg


def build_model(name: str, **overrides: Any) -> nn.Module:
    """Build the registered model ``name`` in eval mode, with ablation ``overrides``.

    Example: ``build_model("1g", num_tokens=12, activation="relu")``.
    """
    return build_from_config(name, get_config(name, **overrides))


def build_seeded_model(name: str, seed: int = 0, **overrides: Any) -> nn.Module:
    """The deterministic seeded init of ``name``: Mobile-Former init drawn from ``seed``,
    plus non-trivial norm statistics (what ``vmf-export`` uses without a checkpoint)."""
    import torch

    from .vmf import randomize_norm_statistics

    cfg = get_config(name, **overrides)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_from_config(name, cfg)
    return randomize_norm_statistics(model, seed)


def build_from_config(name: str, cfg: Any) -> nn.Module:
    """Build model ``name`` from an explicit (already validated) config."""
    if name not in _BUILDERS:
        raise unknown_model_error(name)
    return _BUILDERS[name](cfg).eval()
