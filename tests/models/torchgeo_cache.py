"""Fake TorchGeo weight files in a temporary torch hub cache (no downloads).

A random timm ViT of the enum's architecture, built at its pretraining size (224 px, so the
position embedding has to be resampled like a real file's), saved in float16 under the file
name TorchGeo's ``get_state_dict`` looks for. ``depth`` keeps files small: a model built with
``backbone_kwargs: {depth: N}`` takes the first N blocks of a file, so two blocks are enough for
the tests that build two-block models.
"""

from pathlib import Path

import timm
import torch

from rs_metapeft.models.torchgeo_weights import torchgeo_weights

S1_MAE = "torchgeo:ViTSmall16_Weights.SENTINEL1_GRD_MAE"
S2_DINO = "torchgeo:ViTSmall16_Weights.SENTINEL2_ALL_DINO"


def reference(weights: str, depth: int = 2, seed: int = 0) -> torch.nn.Module:
    """The 'pretrained' model whose (float16-rounded) weights the fake file holds."""
    spec = torchgeo_weights(weights)
    torch.manual_seed(seed)
    model = timm.create_model(spec.model, pretrained=False, num_classes=0,
                              in_chans=len(spec.bands), img_size=spec.img_size, depth=depth)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)  # non-trivial norms and biases
            p.copy_(p.half().float())
    return model.eval()


def write_fake_weights(weights: str, depth: int = 2, seed: int = 0,
                       drop: tuple[str, ...] = ("norm.weight", "norm.bias")) -> Path:
    """Write the fake file into the torch hub cache (set TORCH_HOME first); returns its path.

    ``drop``: keys left out, as TorchGeo's files may lack the final norm (an MAE encoder's).
    """
    spec = torchgeo_weights(weights)
    state = {k: v.half() for k, v in reference(weights, depth, seed).state_dict().items()
             if k not in drop}
    spec.cache_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, spec.cache_path)
    return spec.cache_path
