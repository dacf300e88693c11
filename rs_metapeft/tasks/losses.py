"""Classification losses for long-tailed training (and for the meta step, which uses the same).

* ``ce``: cross-entropy (optionally label-smoothed);
* ``logit_adjusted``: cross-entropy of ``logits + tau * log prior`` (Menon et al. 2021; the
  authors' recipe, tau = 1);
* ``balanced_softmax``: cross-entropy of ``logits + log prior`` (Ren et al. 2020; the same as
  ``logit_adjusted`` at tau = 1, named for recipes that follow that paper);
* ``focal``: ``-(1 - p_t)^focal_gamma * log p_t`` (Lin et al. 2017).

The prior shifts apply only to the loss; predictions use the raw logits.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch.nn import functional as F

from ..choices import check_choice

__all__ = ["LOSSES", "LossKind", "classification_loss"]

#: A loss's name (``model.loss``).
LossKind = Literal["ce", "logit_adjusted", "balanced_softmax", "focal"]
LOSSES = get_args(LossKind)


def classification_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    kind: LossKind = "ce",
    log_prior: torch.Tensor | None = None,
    tau: float = 1.0,
    label_smoothing: float = 0.0,
    focal_gamma: float = 2.0,
) -> torch.Tensor:
    """Mean loss of a batch.

    Args:
        logits: (batch, classes) raw logits.
        labels: (batch,) class indices.
        kind: one of :data:`LOSSES`.
        log_prior: log class priors of the training set (``logit_adjusted``,
            ``balanced_softmax``).
        tau: logit-adjustment strength.
        label_smoothing: label smoothing of the cross-entropy losses.
        focal_gamma: focusing exponent of the focal loss.

    """
    check_choice(kind, LossKind, "model.loss")
    if kind in ("logit_adjusted", "balanced_softmax"):
        if log_prior is None:
            raise ValueError(f"the {kind} loss needs the class priors of the training set")
        scale = tau if kind == "logit_adjusted" else 1.0
        logits = logits + scale * log_prior.to(logits.dtype)
    if kind == "focal":
        logp = F.log_softmax(logits.float(), dim=1).gather(1, labels[:, None]).squeeze(1)
        return (-((1 - logp.exp()) ** focal_gamma) * logp).mean()
    return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
