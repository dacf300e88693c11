"""The multi-label task's parts: losses, thresholds, head start, data-kind checks."""

import pytest
import torch
from torch.nn import functional as F

from rs_metapeft.models.head import (
    class_mean_features,
    init_head_bias_from_frequencies,
    label_scores,
)
from rs_metapeft.tasks import MetaPEFTTask
from rs_metapeft.tasks.losses import MULTILABEL_LOSSES, classification_loss, multilabel_loss
from rs_metapeft.tasks.thresholds import best_f1_thresholds

from ..conftest import TINY_VIT


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(16, 5, generator=g), (torch.rand(16, 5, generator=g) < 0.3).long()


def test_multilabel_losses_match_their_definitions():
    logits, y = _data()
    yf = y.float()
    bce = F.binary_cross_entropy_with_logits(logits, yf)
    assert torch.allclose(multilabel_loss(logits, y), bce)
    freq = torch.tensor([0.5, 0.2, 0.1, 0.05, 0.01])
    odds = (freq / (1 - freq)).log()
    prior = multilabel_loss(logits, y, "prior_bce", odds, tau=0.5)
    assert torch.allclose(prior, F.binary_cross_entropy_with_logits(logits + 0.5 * odds, yf))
    p = torch.sigmoid(logits)
    pm = (p - 0.05).clamp(min=0)
    asl = -(yf * (1 - p) ** 1 * p.log() + (1 - yf) * pm ** 4 * (1 - pm).log()).mean()
    got = multilabel_loss(logits, y, "asymmetric", gamma_pos=1.0, gamma_neg=4.0, clip=0.05)
    assert torch.allclose(got, asl, atol=1e-6)
    # without focusing and shift, the asymmetric loss is the BCE
    plain = multilabel_loss(logits, y, "asymmetric", gamma_pos=0.0, gamma_neg=0.0, clip=0.0)
    assert torch.allclose(plain, F.binary_cross_entropy_with_logits(logits, yf), atol=1e-6)
    assert set(MULTILABEL_LOSSES) == {"bce", "asymmetric", "prior_bce"}


def test_prior_adjustment_pushes_a_rare_label_up():
    logits, y = torch.zeros(1, 2), torch.tensor([[1, 1]])
    odds = torch.tensor([0.5, 0.02]).logit()
    per_label = [multilabel_loss(logits[:, [k]], y[:, [k]], "prior_bce", odds[[k]])
                 for k in range(2)]
    assert per_label[1] > per_label[0]  # a rare label's positive costs more until it rises


def test_losses_refuse_the_other_kind_of_labels():
    logits, y = _data()
    with pytest.raises(ValueError, match="model.loss 'ce' is a single-label loss.*bce"):
        multilabel_loss(logits, y, "ce")
    with pytest.raises(ValueError, match="model.loss 'bce' is a multi-label loss"):
        classification_loss(logits, y[:, 0], "bce")
    with pytest.raises(ValueError, match="model.loss 'focal'.*single-label"):
        MetaPEFTTask(bands=["VV", "VH"], num_classes=5, multilabel=True, loss="focal",
                     backbone_kwargs=TINY_VIT)


def test_thresholds_maximise_each_labels_f1():
    g = torch.Generator().manual_seed(1)
    targets = (torch.rand(50, 3, generator=g) < 0.3).long()
    targets[:, 2] = 0
    scores = (0.3 * targets + 0.7 * torch.rand(50, 3, generator=g))
    chosen = best_f1_thresholds(scores, targets)
    assert chosen[2] == 0.5  # no positives: nothing to choose on

    def f1(k, t):
        pred = scores[:, k] >= t
        tp = (pred & targets[:, k].bool()).sum()
        return float(2 * tp / (pred.sum() + targets[:, k].sum()))

    for k in range(2):
        best = max(f1(k, float(t)) for t in scores[:, k])
        assert f1(k, float(chosen[k])) == pytest.approx(best)


def test_sigmoid_scores_and_a_head_started_at_the_label_frequencies():
    assert torch.allclose(label_scores(torch.zeros(2, 3), True), torch.full((2, 3), 0.5))
    assert torch.allclose(label_scores(torch.zeros(2, 4), False), torch.full((2, 4), 0.25))
    head = torch.nn.Linear(8, 3)
    freq = torch.tensor([0.6, 0.1, 0.01])
    assert init_head_bias_from_frequencies(head, freq)
    assert torch.allclose(torch.sigmoid(head(torch.zeros(1, 8))), freq[None], atol=1e-6)


def test_class_means_of_multi_hot_labels_count_every_label():
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([[1, 0], [0, 1], [1, 1]])
    means, counts = class_mean_features(lambda x: x, [{"image": feats, "label": labels}], 2)
    assert counts.tolist() == [2, 2]
    assert torch.allclose(means, torch.tensor([[1.0, 0.5], [0.5, 1.0]]))
