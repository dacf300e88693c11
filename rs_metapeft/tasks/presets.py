"""Named training recipes, as dotted overrides for :func:`rs_metapeft.fit` or the command line.

* ``authors``: the MetaPEFT paper's recipe: cosine classifier with class-mean initialisation,
  logit-adjusted cross-entropy (tau 1), SGD lr 0.01 momentum 0.9 weight decay 5e-4, one cosine
  schedule, batch 128; a linear gamma moved by SGD lr 1e-3 momentum 0.9 on a disjoint
  held-out meta set.
* ``modern``: AdamW with label smoothing and balanced softmax, a class-balanced training sampler
  (the datamodule's ``sampler`` argument) and the product's meta defaults (log gamma, normalised
  meta steps, class-balanced meta-val batches from the validation split).

Example:
    >>> from rs_metapeft.tasks.presets import preset_overrides
    >>> preset_overrides("authors")["model.loss"]
    'logit_adjusted'

"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["PRESETS", "preset_overrides"]

PRESETS: dict[str, dict[str, Any]] = {
    "authors": {
        "model.head": "cosine",
        "model.head_init": "class_mean",
        "model.loss": "logit_adjusted",
        "model.logit_adjust_tau": 1.0,
        "model.optimizer.name": "sgd",
        "model.optimizer.lr": 0.01,
        "model.optimizer.momentum": 0.9,
        "model.optimizer.weight_decay": 5e-4,
        "model.optimizer.schedule": "cosine",
        "model.peft.gamma_param": "identity",
        "model.meta.optimizer": "sgd",
        "model.meta.lr": 1e-3,
        "model.meta.lr_schedule": "constant",
        "model.meta.momentum": 0.9,
        "data.init_args.batch_size": 128,
        "data.init_args.meta_protocol": "holdout",
        "data.init_args.meta_fraction": 0.2,
    },
    "modern": {
        "model.loss": "balanced_softmax",
        "model.label_smoothing": 0.1,
        "model.optimizer.name": "adamw",
        "model.optimizer.lr": 1e-3,
        "model.optimizer.weight_decay": 0.05,
        "model.optimizer.schedule": "cosine",
        "model.optimizer.warmup_steps": 20,
        "data.init_args.sampler": "class_balanced",
        "data.init_args.meta_protocol": "val_split",
        "data.init_args.meta_balanced_val": True,
    },
}


def preset_overrides(name: str, **overrides: Any) -> dict[str, Any]:
    """Return the dotted overrides of a preset, updated with ``overrides`` (same dotted keys).

    Raises:
        ValueError: unknown preset; the message lists the known ones.

    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return {**copy.deepcopy(PRESETS[name]), **overrides}
