"""Reference PyTorch models: Video Mobile-Former variants and baselines."""

from . import variants as _variants  # noqa: F401  (registers the variants)
from . import x3d as _x3d  # noqa: F401  (registers the X3D peers x3d-xs, x3d-s)
from .blocks import DepthwiseConv, MobileBlock, Mobile3DHead, VMFBlock, VMFHead
from .config import ConfigError, VMFConfig
from .layers import Former, FormerToMobile, FrameDyReLU, MobileToFormer, Stem, TokenDyReLU, TokenFreeReLU
from .registry import build_from_config, build_model, build_seeded_model, get_config, list_models, register_model
from .vmf import Mobile3D, VideoMobileFormer

__all__ = [
    "ConfigError", "DepthwiseConv", "Former", "FormerToMobile", "FrameDyReLU", "Mobile3D", "Mobile3DHead",
    "MobileBlock", "MobileToFormer", "Stem", "TokenDyReLU", "TokenFreeReLU", "VMFBlock", "VMFConfig",
    "VMFHead", "VideoMobileFormer", "build_from_config", "build_model", "build_seeded_model", "get_config", "list_models",
    "register_model",
]
