"""Classification losses for long-tailed training (and for the meta step, which uses the same).

* ``ce``: cross-entropy (optionally label-smoothed);
* ``logit_adjusted``: cross-entropy of ``logits + tau * log prior`` (Menon et al. 2021; the
  authors' recipe, tau = 1);
* ``balanced_softmax``: cross-entropy of ``logits + log prior`` (Ren et al. 2020; the same as
  ``logit_adjusted`` at tau = 1, named for recipes that follow that paper);
* ``focal``: ``-(1 - p_t)^focal_gamma * log p_t`` (Lin et al. 2017).

Multi-label losses (one sigmoid per label; targets multi-hot), for long-tailed label sets:

* ``bce``: binary cross-entropy of every label;
* ``asymmetric``: the asymmetric loss (Ridnik et al. 2021): positives weighted by
  ``(1 - p)^asl_gamma_pos``, negatives by ``p_m^asl_gamma_neg`` with the probability shifted
  down by ``asl_clip`` (``p_m = max(p - clip, 0)``), so the many easy negatives of a rare label
  stop drowning its few positives;
* ``prior_bce``: binary cross-entropy of ``logits + tau * log(f / (1 - f))``, ``f`` each label's
  training frequency: the binary form of logit adjustment, so a rare label's logit has to
  rise further to count as positive during training.

Each is the mean over samples and labels. The prior shifts apply only to the loss; predictions
use the raw logits.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch.nn import functional as F

from ..choices import check_choice

__all__ = [
    "LOSSES", "MULTILABEL_LOSSES", "SINGLE_LABEL_LOSSES", "LossKind", "MultiLabelLossKind",
    "check_loss_for",
    "classification_loss", "multilabel_loss",
]

#: A single-label loss's name.
SingleLabelLossKind = Literal["ce", "logit_adjusted", "balanced_softmax", "focal"]
#: A multi-label loss's name.
MultiLabelLossKind = Literal["bce", "asymmetric", "prior_bce"]
#: A loss's name (``model.loss``): single-label or multi-label.
LossKind = Literal["ce", "logit_adjusted", "balanced_softmax", "focal", "bce", "asymmetric",
                   "prior_bce"]
LOSSES = get_args(LossKind)
SINGLE_LABEL_LOSSES = get_args(SingleLabelLossKind)
MULTILABEL_LOSSES = get_args(MultiLabelLossKind)


def check_loss_for(kind: str, multilabel: bool) -> str:
    """Refuse a loss made for the other kind of labels, naming the ones that fit.

    Args:
        kind: ``model.loss``.
        multilabel: whether samples carry several labels (the datamodule's ``multilabel``).

    Returns:
        ``kind``.

    Raises:
        ValueError: unknown loss, or one for the other kind of labels.
    """
    check_choice(kind, LossKind, "model.loss")
    fits = MULTILABEL_LOSSES if multilabel else SINGLE_LABEL_LOSSES
    if kind not in fits:
        data = "multi-label (several labels per sample)" if multilabel else "single-label"
        raise ValueError(
            f"model.loss {kind!r} is a {'single' if multilabel else 'multi'}-label loss but the "
            f"data are {data}; set model.loss to one of {', '.join(fits)}"
        )
    return kind


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
    check_loss_for(kind, multilabel=False)
    if kind in ("logit_adjusted", "balanced_softmax"):
        if log_prior is None:
            raise ValueError(f"the {kind} loss needs the class priors of the training set")
        scale = tau if kind == "logit_adjusted" else 1.0
        logits = logits + scale * log_prior.to(logits.dtype)
    if kind == "focal":
        logp = F.log_softmax(logits.float(), dim=1).gather(1, labels[:, None]).squeeze(1)
        return (-((1 - logp.exp()) ** focal_gamma) * logp).mean()
    return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)


def multilabel_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    kind: MultiLabelLossKind = "bce",
    log_odds_prior: torch.Tensor | None = None,
    tau: float = 1.0,
    gamma_pos: float = 0.0,
    gamma_neg: float = 4.0,
    clip: float = 0.05,
) -> torch.Tensor:
    """Mean multi-label loss of a batch (over samples and labels).

    Args:
        logits: (batch, labels) raw logits.
        targets: (batch, labels) multi-hot targets (any dtype; 1 marks a label present).
        kind: one of :data:`MULTILABEL_LOSSES`.
        log_odds_prior: ``log(f / (1 - f))`` of each label's training frequency ``f``
            (``prior_bce``).
        tau: strength of the prior adjustment (``prior_bce``).
        gamma_pos: focusing exponent of the positives (``asymmetric``).
        gamma_neg: focusing exponent of the negatives (``asymmetric``).
        clip: probability shift of the negatives (``asymmetric``; 0 switches it off).

    """
    check_loss_for(kind, multilabel=True)
    if logits.shape != targets.shape:
        raise ValueError(
            f"multi-label logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ "
            "in shape; the model's num_classes must be the data's number of labels"
        )
    y = targets.to(logits.dtype)
    if kind == "prior_bce":
        if log_odds_prior is None:
            raise ValueError("the prior_bce loss needs the label frequencies of the training set")
        logits = logits + tau * log_odds_prior.to(logits.dtype)
    if kind != "asymmetric":
        return F.binary_cross_entropy_with_logits(logits, y)
    x = logits.float()
    p = torch.sigmoid(x)
    p_neg = (p - clip).clamp(min=0) if clip > 0 else p
    # log(1 - p_m) from the logits where no shift applies (stable), else from the shifted p.
    log_neg = torch.log((1 - p_neg).clamp(min=1e-8)) if clip > 0 else F.logsigmoid(-x)
    pos = y * (1 - p) ** gamma_pos * F.logsigmoid(x)
    neg = (1 - y) * p_neg ** gamma_neg * log_neg
    return -(pos + neg).mean()
