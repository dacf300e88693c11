"""Load a trained model for inference: from a run folder, a checkpoint or an export folder.

The one loader behind :func:`rs_metapeft.api.load_model` and the ``predict-chips`` /
``predict-scene`` commands, so neither the API nor the command line imports the other.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..models import SpectralViTClassifier
from ..tasks import MetaPEFTTask
from ..tasks.losses import MULTILABEL_LOSSES
from .checkpoint import find_checkpoint, load_task, saved_hyperparameters

__all__ = ["is_multilabel_model", "load_model"]


def _is_export(path: Path) -> bool:
    return path.is_dir() and (path / "manifest.json").is_file()


def is_multilabel_model(source: str | os.PathLike) -> bool:
    """Whether the model at ``source`` is multi-label, read without loading the model.

    Args:
        source: what :func:`load_model` takes: a run folder, a ``.ckpt`` or an export folder.

    Raises:
        FileNotFoundError: nothing to load at ``source``.
        ValueError: an unreadable checkpoint or export; the message names the file.
    """
    path = Path(source)
    if _is_export(path):
        from ..export import read_manifest

        return bool(read_manifest(path).get("multilabel", False))
    return bool(saved_hyperparameters(path).get("multilabel", False))


def load_model(source: str | os.PathLike, device: str = "cpu", weights: str | None = None,
               allow_download: bool = False) -> MetaPEFTTask:
    """Load a trained model from a run folder, a checkpoint or an exported adapter.

    Args:
        source: a run folder (its ``last.ckpt`` or newest checkpoint), a ``.ckpt`` file, or an
            adapter written by ``rs-metapeft export``.
        device: where the model goes.
        weights: for an export without its backbone, the base weights to load under it where
            its reference no longer finds them: the weights file, or the training checkpoint
            (or run folder).
        allow_download: for an adapter-only export of hub weights, fetch them from the hub
            (see :func:`~rs_metapeft.export.load_export`).

    Returns:
        The task in eval mode; ``model.class_names`` and ``model.model.bands`` say what it was
        trained on.

    Raises:
        FileNotFoundError: nothing to load at ``source``.
        ValueError: the checkpoint or export is unreadable or holds no trained model; the
            message names the file.
    """
    path = Path(source)
    if _is_export(path):
        return _task_from_export(path, device, weights, allow_download)
    return load_task(find_checkpoint(path), device)


def _task_from_export(folder: Path, device: str, weights: str | None,
                      allow_download: bool) -> MetaPEFTTask:
    """Wrap a model rebuilt from an ``rs-metapeft export`` folder in a task (evaluate, predict)."""
    from ..export import load_export, read_manifest

    manifest = read_manifest(folder)
    config = manifest["model"]
    multilabel = bool(manifest.get("multilabel", False))
    # A shell with the manifest's model arguments (its hyperparameters); the model inside is
    # the export's own. The loss only has to fit the kind of labels: a shell does not train.
    kind = {"multilabel": True, "loss": MULTILABEL_LOSSES[0]} if multilabel else {}
    task = MetaPEFTTask(**{**SpectralViTClassifier.arguments(config), "weights": None,
                           "peft": {"positions": []}, **kind})
    task.model = load_export(folder, weights, allow_download)
    if multilabel:  # the label sets are the scores at or above these
        task.thresholds.copy_(torch.tensor(manifest["thresholds"], dtype=torch.float))
        task.thresholds_source = manifest.get("thresholds_source") or task.thresholds_source
        task.train_samples = manifest.get("train_samples")
    task.class_names = list(manifest["classes"])
    task.train_counts = list(manifest.get("train_counts") or [0] * config["num_classes"])
    task.group_counts = list(manifest.get("group_counts") or task.train_counts)  # older: none
    task.data_info = dict(manifest.get("data") or {})  # CRS and nodata of the training data
    return task.to(device).eval()
