"""Load a trained MetaPEFTTask and check that data fits it."""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import torch

from ..bands import check_compatible, describe_difference
from ..checkpointing import CheckpointReadError, check_checkpoint_file
from ..tasks import MetaPEFTTask

__all__ = [
    "CheckpointMismatchError", "check_matches", "check_names", "find_checkpoint", "load_task",
    "saved_hyperparameters",
]


class CheckpointMismatchError(ValueError):
    """Data whose classes differ from a trained model's; the message spells out the difference.

    Bands that differ raise :class:`~rs_metapeft.bands.BandMismatchError` (the one band check).
    """


def find_checkpoint(run: str | os.PathLike) -> Path:
    """Find the checkpoint to use: the file itself, or in a run folder ``last.ckpt`` or the newest.

    Raises:
        FileNotFoundError: no ``.ckpt`` file there.

    """
    path = Path(run)
    if path.is_file():
        return path
    found = list(path.rglob("*.ckpt")) if path.is_dir() else []
    if not found:
        raise FileNotFoundError(
            f"no checkpoint (.ckpt) at {path}: give a checkpoint file or a run folder written "
            "by `rs-metapeft fit`"
        )
    last = [p for p in found if p.name == "last.ckpt"]
    return max(last or found, key=lambda p: p.stat().st_mtime)


def load_task(checkpoint: str | os.PathLike, device: str = "cpu") -> MetaPEFTTask:
    """Load a trained task (in eval mode) from a checkpoint file or a run folder.

    The checkpoint carries bands, band statistics, classes and training counts, so the model
    can refuse data it was not made for (see :func:`check_matches`).

    Raises:
        FileNotFoundError: no checkpoint there.
        CheckpointReadError: a truncated or corrupt checkpoint; the message names the file.
        ValueError: a checkpoint without band statistics.
    """
    path = check_checkpoint_file(find_checkpoint(checkpoint))
    try:
        # The checkpoint holds every tensor, the frozen backbone's too: the backbone is built
        # without loading its pretrained weights (no hub, file or TorchGeo cache needed), then
        # records their id again.
        task = MetaPEFTTask.load_from_checkpoint(path, map_location=device, weights_only=True,
                                                 weights=None)
    except (RuntimeError, EOFError, pickle.UnpicklingError) as err:
        raise CheckpointReadError(f"cannot read checkpoint {path}: {err}") from err
    weights = saved_hyperparameters(path).get("weights")
    task.hparams["weights"] = task.model.config["weights"] = weights
    if not bool(task.model.normalizer.fitted):
        raise ValueError(f"{path} holds a model without band statistics; was it trained?")
    return task.eval()


def saved_hyperparameters(checkpoint: str | os.PathLike) -> dict:
    """A checkpoint's hyperparameters, read without loading its tensors.

    Args:
        checkpoint: a checkpoint file or a run folder (see :func:`find_checkpoint`).

    Raises:
        FileNotFoundError: no checkpoint there.
        CheckpointReadError: a truncated or corrupt checkpoint; the message names the file.
    """
    path = check_checkpoint_file(find_checkpoint(checkpoint))
    try:
        # mmap: only the small hyperparameters are read, not the tensors.
        saved = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError) as err:
        raise CheckpointReadError(f"cannot read checkpoint {path}: {err}") from err
    hparams = saved.get("hyper_parameters") if isinstance(saved, dict) else None
    return dict(hparams or {})


def check_matches(task: MetaPEFTTask, bands: Sequence[str] | None = None,
                  classes: Sequence[str] | None = None) -> None:
    """Refuse data whose bands or classes differ from the model's, naming the difference.

    Band names are compared after the band registry resolves aliases (``red`` is ``B04``).

    Raises:
        BandMismatchError: bands differ.
        CheckpointMismatchError: classes differ.

    """
    check_names(task.model.bands, task.class_names, bands, classes)


def check_names(model_bands: Sequence[str] | None, model_classes: Sequence[str] | None,
                bands: Sequence[str] | None = None,
                classes: Sequence[str] | None = None) -> None:
    """Compare a model's bands and classes (e.g. a checkpoint's metadata) with the data's.

    Raises:
        BandMismatchError: bands differ (see :func:`~rs_metapeft.bands.check_compatible`).
        CheckpointMismatchError: classes differ; the message spells out how.

    """
    if None not in (model_bands, bands):
        check_compatible(model_bands, bands, where="the model")
    if None not in (model_classes, classes) and list(classes) != list(model_classes):
        raise CheckpointMismatchError(
            describe_difference("classes", model_classes, classes, where="the model")
        )
