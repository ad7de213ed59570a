"""Training: the loop behind ``vmf-train``, its schedule, augmentation and batch loader."""

from .loop import TrainConfig, TrainError, TrainResult, evaluate, topk_accuracy, train

__all__ = ["TrainConfig", "TrainError", "TrainResult", "evaluate", "topk_accuracy", "train"]
