"""Activation checkpointing per block changes memory, not gradients: inner and meta step alike."""

import pytest
import torch
from torch.nn import functional as F

from rs_metapeft.meta import lookahead_hypergradient
from rs_metapeft.models import create_backbone
from rs_metapeft.peft import PeftConfig, inject_peft, split_parameters


def _model(checkpointing: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    vit = create_backbone("vit_tiny_patch16_224", None, 16, 8, depth=2, embed_dim=16,
                          num_heads=2)
    for m in inject_peft(vit, PeftConfig(positions=["q", "v", "fc2", "adaptformer"], rank=2,
                                         bottleneck=4)):
        for name, p in m.named_parameters():  # non-zero B / Up: every gamma gets a gradient
            if not name.endswith("gamma"):
                p.data.normal_(0, 0.3)
    vit.set_grad_checkpointing(checkpointing)
    return torch.nn.Sequential(vit, torch.nn.Linear(16, 3)).double().train()


def _batch(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, 3, 16, 16, generator=g, dtype=torch.float64),
            torch.randint(0, 3, (n,), generator=g))


def test_training_gradients_are_those_without_checkpointing():
    x, y = _batch(4, 0)
    grads = []
    for checkpointing in (False, True):
        model = _model(checkpointing)
        F.cross_entropy(model(x), y).backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 4
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=0, atol=1e-10, msg=name)


@pytest.mark.parametrize("mode", ["unrolled", "first_order"])
def test_the_hypergradient_goes_through_checkpointed_blocks_unchanged(mode):
    train, meta = _batch(4, 1), _batch(4, 2)
    results = [lookahead_hypergradient(_model(c), F.cross_entropy, [train], meta, 0.5, mode)
               for c in (False, True)]
    _, gamma = split_parameters(_model(False))
    assert set(results[0].grads) == set(gamma)
    for name in gamma:
        torch.testing.assert_close(results[1].grads[name], results[0].grads[name], rtol=0,
                                   atol=1e-10, msg=name)
