"""Classification heads, their scores, and their initialisation.

A head gives one logit per class. Single-label models turn them into class probabilities with a
softmax; multi-label models into independent per-label probabilities with a sigmoid
(:func:`label_scores`), so a scene can carry any number of labels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal, get_args

import torch
from torch import nn
from torch.nn import functional as F

from ..choices import check_choice

__all__ = [
    "HEADS", "CosineHead", "HeadKind", "build_head", "class_mean_features",
    "init_head_bias_from_frequencies", "init_head_from_class_means", "label_scores",
]

#: A head's name (``model.head``).
HeadKind = Literal["linear", "cosine"]
HEADS = get_args(HeadKind)


class CosineHead(nn.Module):
    """Cosine classifier: ``scale * cos(feature, class weight)``.

    Args:
        in_features: feature width.
        num_classes: number of classes.
        scale: logit scale (the paper uses 25).
    """

    def __init__(self, in_features: int, num_classes: int, scale: float = 25.0) -> None:
        super().__init__()
        self.scale = scale
        self.weight = nn.Parameter(torch.randn(num_classes, in_features) * 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scaled cosine logits."""
        return self.scale * F.linear(F.normalize(x, dim=-1), F.normalize(self.weight, dim=-1))


def build_head(kind: HeadKind, in_features: int, num_classes: int,
               scale: float = 25.0) -> nn.Module:
    """A ``linear`` or ``cosine`` head (``scale`` is the cosine head's logit scale).

    Raises:
        ValueError: unknown kind.
    """
    if check_choice(kind, HeadKind, "model.head") == "linear":
        return nn.Linear(in_features, num_classes)
    return CosineHead(in_features, num_classes, scale)


def label_scores(logits: torch.Tensor, multilabel: bool) -> torch.Tensor:
    """Scores of a head's logits: a softmax over classes, or a sigmoid per label (multi-label).

    Example:
        >>> label_scores(torch.zeros(1, 4), multilabel=True)
        tensor([[0.5000, 0.5000, 0.5000, 0.5000]])
    """
    return torch.sigmoid(logits) if multilabel else logits.softmax(-1)


@torch.no_grad()
def init_head_bias_from_frequencies(head: nn.Module, frequencies: torch.Tensor) -> bool:
    """Start a linear sigmoid head at the labels' training frequencies (bias = their log-odds).

    With zero bias every label starts at probability 0.5, and the first steps of training only
    push the many negatives of the rare labels down; starting at the frequencies (Lin et al.
    2017) spares those steps.

    Args:
        head: the model's head.
        frequencies: share of training samples carrying each label.

    Returns:
        Whether the head has a bias to set (a cosine head has none and is left as it is).
    """
    bias = getattr(head, "bias", None)
    if bias is None:
        return False
    f = frequencies.to(bias.device, torch.float64).clamp(1e-6, 1 - 1e-6)
    bias.copy_((f.log() - (-f).log1p()).to(bias.dtype))
    return True


@torch.no_grad()
def class_mean_features(
    features: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable[dict[str, torch.Tensor]],
    num_classes: int,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean feature of every class over ``batches`` (dicts with ``image`` and ``label``).

    A ``label`` of class indices counts each image for its class; a multi-hot ``label``
    (batch, classes) counts it for every label it carries.

    Returns:
        ``(means, counts)``: a (num_classes, D) tensor and the images seen per class.
    """
    sums: torch.Tensor | None = None
    counts = torch.zeros(num_classes, device=device)
    for batch in batches:
        feats = features(batch["image"].to(device)).float()
        labels = batch["label"].to(device)
        if sums is None:
            sums = torch.zeros(num_classes, feats.shape[1], device=device)
        if labels.ndim == 2:  # multi-hot
            hot = labels.float()
            sums += hot.T @ feats
            counts += hot.sum(0)
        else:
            sums.index_add_(0, labels, feats)
            counts += torch.bincount(labels, minlength=num_classes).float()
    if sums is None:
        raise ValueError("class-mean head initialisation got no batches")
    return sums / counts.clamp(min=1).unsqueeze(1), counts


def init_head_from_class_means(model: nn.Module, dataloader: Iterable[dict[str, torch.Tensor]]
                               ) -> torch.Tensor:
    """Initialise ``model.head`` from normalised class-mean features of the frozen model.

    The features are the model's own (``model.features``) in eval mode, with PEFT modules as
    they are (fresh modules are no-ops, so this is the frozen backbone). Cosine heads get the
    normalised means as class weights; linear heads get them as weights with zero bias, so the
    logits are the features' projections on each class direction. A class without images keeps
    its random initialisation.

    Args:
        model: a :class:`~rs_metapeft.models.SpectralViTClassifier` (``features`` and ``head``).
        dataloader: training batches (dicts with ``image`` and ``label``).

    Returns:
        The images seen per class.
    """
    head = model.head
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        means, counts = class_mean_features(model.features, dataloader, head.weight.shape[0],
                                            device)
    finally:
        model.train(was_training)
    seen = counts > 0
    with torch.no_grad():
        head.weight[seen] = F.normalize(means[seen], dim=-1).to(head.weight.dtype)
        if isinstance(head, nn.Linear) and head.bias is not None:
            head.bias[seen] = 0.0
    return counts
