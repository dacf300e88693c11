"""Per-label decision thresholds of a multi-label model, chosen on the validation split.

A sigmoid score of 0.5 is the right cut only for a label the model saw as often positive as
negative; a rare label's scores sit lower, and at 0.5 it is almost never predicted. Each label's
threshold is instead the score cut that gives the best F1 of that label on the validation split
(halfway between the lowest score kept positive and the next one below). A label without
positives in the validation split keeps 0.5.

:class:`ValidationThresholds` chooses them when fit ends, with the final weights, before the last
checkpoint is written (Lightning runs checkpoint callbacks last), so the checkpoint carries the
thresholds of its own weights; testing and prediction use them.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

__all__ = ["DEFAULT_THRESHOLD", "ValidationThresholds", "best_f1_thresholds"]

#: The threshold of a label with nothing to choose it on.
DEFAULT_THRESHOLD = 0.5


def best_f1_thresholds(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The threshold of every label that maximises its F1 on ``(scores, targets)``.

    Args:
        scores: (N, K) probabilities.
        targets: (N, K) multi-hot labels.

    Returns:
        (K,) thresholds; a sample is predicted to carry label ``k`` when its score is at least
        ``thresholds[k]``.

    Example:
        >>> best_f1_thresholds(torch.tensor([[0.9], [0.3], [0.2], [0.1]]),
        ...                    torch.tensor([[1], [1], [0], [0]]))
        tensor([0.2500])
    """
    scores, targets = scores.double(), targets.bool()
    out = torch.full((scores.shape[1],), DEFAULT_THRESHOLD, dtype=torch.float64)
    for k in range(scores.shape[1]):
        positives = int(targets[:, k].sum())
        if positives == 0:
            continue
        order = scores[:, k].argsort(descending=True)
        ranked, hits = scores[order, k], targets[order, k].double()
        tp = hits.cumsum(0)
        # Cut after position i (the top i + 1 predicted positive), only where the score drops,
        # so that tied scores fall on one side of the threshold together.
        cut = torch.ones_like(ranked, dtype=torch.bool)
        cut[:-1] = ranked[:-1] > ranked[1:]
        f1 = 2 * tp / (torch.arange(1, len(ranked) + 1, dtype=torch.float64) + positives)
        f1[~cut] = -1
        i = int(f1.argmax())
        below = ranked[i + 1] if i + 1 < len(ranked) else ranked[i] / 2
        out[k] = (ranked[i] + below) / 2
    return out.float()


@torch.no_grad()
def validation_scores(task: Any, datamodule: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Sigmoid scores and labels of the whole validation split (evaluation transform, eval mode)."""
    was_training = task.training
    task.eval()
    scores, targets = [], []
    try:
        for batch in datamodule.val_dataloader():
            batch = {k: v.to(task.device) if torch.is_tensor(v) else v for k, v in batch.items()}
            batch = datamodule.aug(batch)
            scores.append(torch.sigmoid(task(batch["image"])).float().cpu())
            targets.append(batch["label"].cpu())
    finally:
        task.train(was_training)
    return torch.cat(scores), torch.cat(targets)


class ValidationThresholds(L.Callback):
    """When fit ends: choose the per-label thresholds on the validation split (multi-label only).

    Under DDP each rank scores the whole validation split, so every rank sets the same thresholds.
    """

    def on_train_end(self, trainer: L.Trainer, pl_module: Any) -> None:  # noqa: D102 - Lightning hook
        datamodule = getattr(trainer, "datamodule", None)
        if not pl_module.multilabel or datamodule is None or trainer.interrupted:
            return
        if getattr(datamodule, "val_dataset", None) is None or len(datamodule.val_dataset) == 0:
            pl_module.thresholds_source = "default (no validation split)"
            return
        scores, targets = validation_scores(pl_module, datamodule)
        pl_module.thresholds.copy_(best_f1_thresholds(scores, targets))
        pl_module.thresholds_source = f"best F1 on {len(scores)} validation samples"
