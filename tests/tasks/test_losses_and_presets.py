import math

import pytest
import torch
from torch.nn import functional as F

from rs_metapeft.cli import build_cli
from rs_metapeft.models import CosineHead
from rs_metapeft.tasks.losses import LOSSES, MULTILABEL_LOSSES, classification_loss
from rs_metapeft.tasks.presets import preset_overrides


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(16, 4, generator=g), torch.randint(0, 4, (16,), generator=g)


def test_losses_match_their_definitions():
    logits, labels = _data()
    prior = torch.tensor([0.7, 0.2, 0.07, 0.03]).log()
    assert torch.allclose(classification_loss(logits, labels), F.cross_entropy(logits, labels))
    la = classification_loss(logits, labels, "logit_adjusted", prior, tau=0.5)
    assert torch.allclose(la, F.cross_entropy(logits + 0.5 * prior, labels))
    bs = classification_loss(logits, labels, "balanced_softmax", prior, tau=0.5)
    assert torch.allclose(bs, F.cross_entropy(logits + prior, labels))  # tau does not apply
    smooth = classification_loss(logits, labels, label_smoothing=0.2)
    assert torch.allclose(smooth, F.cross_entropy(logits, labels, label_smoothing=0.2))
    p = logits.softmax(1)[torch.arange(16), labels]
    focal = classification_loss(logits, labels, "focal", focal_gamma=2.0)
    assert torch.allclose(focal, (-(1 - p) ** 2 * p.log()).mean(), atol=1e-6)
    assert torch.allclose(classification_loss(logits, labels, "focal", focal_gamma=0.0),
                          F.cross_entropy(logits, labels), atol=1e-6)
    with pytest.raises(ValueError, match="model.loss"):
        classification_loss(logits, labels, "hinge")
    with pytest.raises(ValueError, match="priors"):
        classification_loss(logits, labels, "logit_adjusted")
    assert set(LOSSES) == {"ce", "logit_adjusted", "balanced_softmax", "focal",
                           *MULTILABEL_LOSSES}


def test_logit_adjustment_favours_the_tail_during_training():
    logits = torch.zeros(1, 2)
    prior = torch.tensor([0.9, 0.1]).log()
    # With equal logits, the adjusted loss is larger for the head label: it pushes the tail up.
    head = classification_loss(logits, torch.tensor([0]), "logit_adjusted", prior)
    tail = classification_loss(logits, torch.tensor([1]), "logit_adjusted", prior)
    assert tail > head and math.isclose(float(tail), -math.log(0.1), rel_tol=1e-5)


def _cli_args(overrides, root):
    args = ["--config", "demo", f"--data.init_args.root={root}"]
    for key, value in overrides.items():
        args.append(f"--{key}={value}")
    return args


def test_authors_preset_builds_the_authors_recipe(tmp_path):
    cli = build_cli(_cli_args(preset_overrides("authors"), tmp_path), run=False)
    task, dm = cli.model, cli.datamodule
    assert isinstance(task.model.head, CosineHead) and task.head_init == "class_mean"
    assert task.loss_kind == "logit_adjusted" and task.tau == 1.0
    opt = task.optim_config
    assert (opt.name, opt.lr, opt.momentum, opt.weight_decay, opt.schedule) == (
        "sgd", 0.01, 0.9, 5e-4, "cosine")
    assert (task.meta_config.optimizer, task.meta_config.lr) == ("sgd", 1e-3)
    assert task.peft_config.gamma_param == "identity"  # the authors' linear gamma
    assert dm.batch_size == 128 and dm.meta_protocol == "holdout"
    with pytest.raises(ValueError, match="unknown preset"):
        preset_overrides("nope")


def test_modern_preset_builds_with_class_aware_sampling(tmp_path):
    cli = build_cli(_cli_args(preset_overrides("modern"), tmp_path), run=False)
    assert cli.model.loss_kind == "balanced_softmax" and cli.model.label_smoothing == 0.1
    assert cli.datamodule.meta_protocol == "val_split" and cli.datamodule.meta_balanced_val
