"""A small pretrained-like ViT weights file, generated in the test (no downloads)."""

from pathlib import Path

import timm
import torch
from safetensors.torch import save_file

from ..conftest import TINY_VIT

NAME = "vit_tiny_patch16_224"
IMG, PATCH = 32, 8


def reference_vit(seed: int = 123) -> torch.nn.Module:
    """The 'pretrained' ViT whose weights the files hold."""
    torch.manual_seed(seed)
    model = timm.create_model(NAME, pretrained=False, img_size=IMG, patch_size=PATCH,
                              num_classes=0, **TINY_VIT)
    # Non-zero biases and LayerNorm affine parameters, so BitFit and merges are exercised.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def save_weights(path: Path, seed: int = 123) -> Path:
    """Write the reference ViT as a float16, head-less state dict (.pth or .safetensors)."""
    sd = {k: v.half().contiguous() for k, v in reference_vit(seed).state_dict().items()}
    if path.suffix == ".safetensors":
        save_file(sd, str(path))
    else:
        torch.save(sd, path)
    return path


def loaded_reference(seed: int = 123) -> torch.nn.Module:
    """The reference ViT with the float16-rounded weights the file holds."""
    model = reference_vit(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    return model
