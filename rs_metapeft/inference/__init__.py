"""Prediction with trained models: loading checkpoints, chip folders and large scenes."""

from .checkpoint import (
    CheckpointMismatchError,
    check_matches,
    check_names,
    find_checkpoint,
    load_task,
)
from .chips import predict_chips
from .loading import is_multilabel_model, load_model
from .scene import predict_scene

__all__ = [
    "CheckpointMismatchError",
    "check_matches",
    "check_names",
    "find_checkpoint",
    "is_multilabel_model",
    "load_model",
    "load_task",
    "predict_chips",
    "predict_scene",
]
