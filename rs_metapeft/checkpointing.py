"""Checkpoints: what rs_metapeft adds to Lightning's, where ``last.ckpt`` goes, how it is written.

A Lightning checkpoint already holds the weights, both optimisers (inner and meta), the LR
schedule, the loops' progress, the training loader's position (:class:`ResumableDataLoader`) and
the datamodule's :meth:`~lightning.pytorch.LightningDataModule.state_dict` (the meta sampler).
This module adds the rest, in one place:

* :func:`task_metadata` / :func:`restore_task_metadata`: the checkpoint's ``rs_metapeft`` section
  (bands, band statistics, classes, training counts, gamma and its history, outer-step
  counters, the training data's CRS and nodata value), which makes a checkpoint self-describing;
* :class:`ExactResume`: the random-number states and the loader's position, so that a resume is
  exact (the task adds it to every trainer);
* :class:`LastCheckpoint`: ``last.ckpt`` every ``every_n_train_steps`` steps, when fit ends (also
  at ``trainer.max_steps`` in mid-epoch) and on SIGTERM, written atomically;
* :func:`find_last_checkpoint`: what ``--ckpt_path last`` means on the command line (the newest
  ``last.ckpt`` of the run folder, whichever version folder it is in).
"""

from __future__ import annotations

import os
import pickle
import random
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException

from .bands import check_compatible
from .io import atomic_path

__all__ = [
    "METADATA_KEY",
    "AtomicCheckpointIO",
    "CheckpointReadError",
    "ExactResume",
    "LastCheckpoint",
    "check_checkpoint_file",
    "find_last_checkpoint",
    "read_checkpoint",
    "restore_rng_states",
    "restore_task_metadata",
    "rng_states",
    "task_metadata",
]

#: The checkpoint key of the rs_metapeft section.
METADATA_KEY = "rs_metapeft"

_LAST = re.compile(r"^last(-v\d+)?\.ckpt$")


def _str_keys(gmap: dict[int, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {str(k): dict(v) for k, v in gmap.items()}


def _int_keys(gmap: dict[str, dict[str, float]]) -> dict[int, dict[str, float]]:
    return {int(k): dict(v) for k, v in gmap.items()}


class CheckpointReadError(ValueError):
    """A checkpoint file that cannot be read (truncated, corrupt, or not a checkpoint)."""


def _unreadable(path: Path, err: BaseException) -> CheckpointReadError:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return CheckpointReadError(
        f"cannot read checkpoint {path}: it is truncated, corrupt or not a checkpoint ({reason}); "
        "use another one (an earlier last.ckpt, or the run's other checkpoints) or train again"
    )


def check_checkpoint_file(path: str | os.PathLike) -> Path:
    """Refuse a checkpoint file that cannot be read, before Lightning or torch try to.

    Cheap: opens the file's zip directory (``torch.save``'s format), which a truncated file lacks.

    Raises:
        FileNotFoundError: no such file.
        CheckpointReadError: the file is not a readable checkpoint; the message names it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with zipfile.ZipFile(path):
            pass
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise _unreadable(path, err) from err
    return path


def read_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; one clear error if it cannot be read.

    Raises:
        FileNotFoundError: no such file.
        CheckpointReadError: truncated, corrupt or not a checkpoint; the message names the file.
    """
    path = check_checkpoint_file(path)
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as err:
        raise _unreadable(path, err) from err
    if not isinstance(checkpoint, dict):
        raise CheckpointReadError(f"{path} holds a {type(checkpoint).__name__}, not a checkpoint")
    return checkpoint


def task_metadata(task: Any) -> dict[str, Any]:
    """The ``rs_metapeft`` section of a checkpoint of a :class:`~rs_metapeft.tasks.MetaPEFTTask`.

    Args:
        task: the task being saved.

    Returns:
        Bands, stem, band statistics, classes, training counts, gamma, gamma history, outer-step
        counters, the training data's CRS and nodata value (``data``, where known),
        ``multilabel`` (with the per-label ``thresholds``, how they were chosen and the training
        samples of a multi-label model) and random-number states; with a meta sampler, also
        the data seed and the meta split (descriptive: the sampler's state travels in the
        datamodule's ``state_dict``).
    """
    from .peft import gamma_map

    norm = task.model.normalizer
    info = {
        "bands": list(task.model.bands),
        "stem": task.model.stem_kind,
        "band_mean": norm.mean.tolist(),
        "band_std": norm.std.tolist(),
        "classes": task.class_names,
        "train_counts": task.train_counts,
        "group_counts": task.group_counts,
        "gamma": gamma_map(task.model),
        "gamma_history": [[s, _str_keys(g)] for s, g in task.gamma_history],
        "outer_steps": task.outer_steps,
        "skipped_outer_steps": task.skipped_outer_steps,
        "data": dict(getattr(task, "data_info", {})),
        "multilabel": bool(getattr(task, "multilabel", False)),
    }
    if info["multilabel"]:  # the thresholds travel as a buffer too; here they are readable
        info["thresholds"] = task.thresholds.tolist()
        info["thresholds_source"] = task.thresholds_source
        info["train_samples"] = task.train_samples
    trainer = task._trainer
    dm = getattr(trainer, "datamodule", None) if trainer is not None else None
    if dm is not None and getattr(dm, "meta_sampler", None) is not None:
        info["seed"] = dm.seed
        info["meta_split"] = {k: v.tolist() for k, v in dm.meta_sampler.parts.items()}
    return info


def restore_task_metadata(task: Any, info: dict[str, Any]) -> None:
    """Check the bands, then restore classes, counts, gamma history and counters.

    Args:
        task: the task being loaded.
        info: the section (:func:`task_metadata`); an empty dict for foreign checkpoints.

    Raises:
        BandMismatchError: the checkpoint was made for other bands than the task's model (which
            has the data's bands: ``data.bands`` on the command line).
    """
    if "bands" in info:
        check_compatible(info["bands"], task.model.bands, where="the checkpoint",
                         fix="use the checkpoint's data.bands (same order), or train anew")
    task.class_names = info.get("classes", task.class_names)
    task.train_counts = info.get("train_counts", task.train_counts)
    task.group_counts = info.get("group_counts", task.train_counts)  # older: no holdout split
    task.outer_steps = info.get("outer_steps", 0)
    task.skipped_outer_steps = info.get("skipped_outer_steps", 0)
    task.gamma_history = [(int(s), _int_keys(g)) for s, g in info.get("gamma_history", [])]
    task.data_info = dict(info.get("data", {}))
    if getattr(task, "multilabel", False):
        task.thresholds_source = info.get("thresholds_source", task.thresholds_source)
        task.train_samples = info.get("train_samples", task.train_samples)


class ExactResume(Callback):
    """Make a resumed run continue exactly: random-number states and the loader's position.

    Its checkpoint state is the global random-number states (:func:`rng_states`), restored when
    training starts again (restoring them on load would be undone by whatever draws before the
    first step). It also hands the saved position to the training loader when Lightning built
    the loader before it loaded the loops: ``trainer.estimated_stepping_batches`` (the task's
    learning-rate schedule) does so whenever ``trainer.max_epochs`` is set, as in every recipe,
    and the loader would otherwise start its epoch over, silently.
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        """The random-number states as they are when the checkpoint is written."""
        return {"rng": rng_states()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keep the saved states for :meth:`on_train_start`."""
        self._pending = state_dict.get("rng")

    def on_train_start(self, trainer, pl_module) -> None:
        """Apply a pending loader position, then the random-number states."""
        loop = trainer.fit_loop
        # Lightning applies these only when it builds the loader after loading the loops; built
        # earlier (see above), it keeps them pending and never applies them.
        if loop.restarting and loop._combined_loader_states_to_load:
            loop._load_combined_loader_states()
        states, self._pending = self._pending, None
        if states is not None:
            restore_rng_states(states)


def rng_states() -> dict[str, Any]:
    """The global random-number states: torch (CPU and CUDA), Python and NumPy.

    Only tensors, numbers and tuples, so the checkpoint still loads with ``weights_only=True``.
    """
    kind, key, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {"kind": kind, "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Set the global random-number states saved by :func:`rng_states`."""
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    if "python" in states:
        version, internal, gauss = states["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in states:
        s = states["numpy"]
        np.random.set_state((s["kind"], s["key"].numpy().astype(np.uint32), s["pos"],
                             s["has_gauss"], s["cached_gaussian"]))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary file beside it, then rename it into place.

    A run killed while saving leaves the previous ``last.ckpt`` intact rather than a truncated one
    (Lightning's own local transaction stages in the system temp folder, which on another
    filesystem turns the final move into a non-atomic copy).
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any,
                        storage_options: Any | None = None) -> None:
        """Save ``checkpoint`` to ``path`` atomically (``storage_options`` are not used)."""
        with atomic_path(path, fsync=True) as tmp:
            torch.save(checkpoint, tmp)


class LastCheckpoint(ModelCheckpoint):
    """``last.ckpt`` every N training steps, when fit ends, and on SIGTERM; written atomically.

    The file goes to ``<log dir>/checkpoints/last.ckpt`` (with the default loggers
    ``<default_root_dir>/lightning_logs/version_N/checkpoints/last.ckpt``). It holds the state
    after the step (weights, both optimisers, schedule, loops, loader position, meta sampler,
    random-number states), so ``rs-metapeft fit --ckpt_path last`` continues bit for bit.

    Args:
        every_n_train_steps: save every this many training steps (0: only at the end of fit).
        dirpath: folder of the checkpoints (default: the log dir's ``checkpoints``).
        save_top_k: also keep this many ``epoch=E-step=S.ckpt`` files (the newest; 0: none).
        save_on_sigterm: save when the run is stopped by SIGTERM (Lightning ends the current
            step first, so the saved state is consistent).
    """

    def __init__(self, every_n_train_steps: int = 50, dirpath: str | None = None,
                 save_top_k: int = 0, save_on_sigterm: bool = True) -> None:
        if every_n_train_steps < 0:
            raise ValueError(
                f"checkpoint.every_n_train_steps must be >= 0, got {every_n_train_steps}"
            )
        super().__init__(dirpath=dirpath, save_last=True, save_top_k=save_top_k,
                         every_n_train_steps=every_n_train_steps, every_n_epochs=0)
        self.save_on_sigterm = save_on_sigterm

    def setup(self, trainer, pl_module, stage: str) -> None:  # noqa: D102 - Lightning hook
        super().setup(trainer, pl_module, stage)
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Take the saved paths only when saving into the same folder again.

        A run resumed with the default loggers writes into a new ``version_N`` folder; there is
        nothing of the old folder's to track (ModelCheckpoint would warn about it every time).
        """
        if state_dict.get("dirpath") == self.dirpath:
            super().load_state_dict(state_dict)

    def _save(self, trainer) -> None:
        if self._should_skip_saving_checkpoint(trainer):
            return
        candidates = self._monitor_candidates(trainer)
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        """Save every ``every_n_train_steps`` steps, the state after the step."""
        # ModelCheckpoint's manual-optimisation branch warns on every save that the state is
        # the post-step one; that is the state an exact resume needs, so save it plainly.
        every = self._every_n_train_steps
        if every >= 1 and trainer.global_step % every == 0:
            self._save(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        """Nothing: saves follow the step count (ModelCheckpoint would rewrite last.ckpt)."""

    def on_validation_end(self, trainer, pl_module) -> None:
        """Nothing: saves follow the step count, whether or not validation runs."""

    def on_train_end(self, trainer, pl_module) -> None:
        """Save the final state unless this step was just saved (also at max_steps mid-epoch)."""
        self._save(trainer)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        """On SIGTERM (raised between steps, so the state is consistent) save ``last.ckpt``."""
        # Other exceptions may strike mid-step; the last periodic checkpoint is the safe one.
        if self.save_on_sigterm and isinstance(exception, SIGTERMException):
            self._save(trainer)


def find_last_checkpoint(root: str | os.PathLike) -> Path:
    """The newest ``last.ckpt`` under a run folder (any ``lightning_logs/version_N``).

    Args:
        root: the run folder (``trainer.default_root_dir``) or a checkpoint folder.

    Raises:
        FileNotFoundError: there is none; the message names the folder searched.
    """
    folder = Path(root)
    found = [p for p in folder.rglob("*.ckpt") if _LAST.match(p.name)] if folder.is_dir() else []
    if not found:
        raise FileNotFoundError(
            f"--ckpt_path last: no last.ckpt under {folder}; train there first with "
            "`rs-metapeft fit` (it writes checkpoints/last.ckpt) or give the checkpoint's path"
        )
    return max(found, key=lambda p: p.stat().st_mtime_ns)
