"""The small ViT and helpers the PEFT tests share."""

import torch

from rs_metapeft.models import create_backbone

from ..conftest import TINY_VIT

#: Width and depth of the test ViT.
D, DEPTH = 192, TINY_VIT["depth"]


def tiny_vit():
    """A two-block ViT-Tiny at 32 px, the same weights every call."""
    torch.manual_seed(0)
    return create_backbone("vit_tiny_patch16_224", None, 32, 8, **TINY_VIT).eval()


def randomise(modules):
    """Give fresh PEFT modules weights: they start as no-ops (B and Up are zero)."""
    torch.manual_seed(1)
    for m in modules:
        for name, p in m.named_parameters():
            if not name.endswith("gamma"):
                p.data.normal_(0, 0.2)
