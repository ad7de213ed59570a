"""vmf-deploy: export, verify, benchmark and ship Video Mobile-Former."""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .counting import count_flops, count_params
from .models import ConfigError, VMFConfig, build_model, build_seeded_model, get_config, list_models

__version__ = "0.1.0"

__all__ = [
    "CheckpointError", "ConfigError", "VMFConfig", "__version__", "build_model", "build_seeded_model",
    "count_flops", "count_params", "get_config", "list_models", "load_checkpoint", "save_checkpoint",
]
