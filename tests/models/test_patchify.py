"""Patch embeddings and band mixing as matrix products equal the convolutions (float64)."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from rs_metapeft.models import SpectralViTClassifier
from rs_metapeft.models.patchify import PatchProjection, band_mix, patch_conv

from ..conftest import TINY_VIT


def _grads(output: torch.Tensor, inputs: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    weights = torch.linspace(-1, 1, output.numel(), dtype=output.dtype).view_as(output)
    return torch.autograd.grad((output * weights).sum(), inputs)


def _leaves(*shapes: tuple[int, ...]) -> list[torch.Tensor]:
    torch.manual_seed(0)
    return [torch.randn(*s, dtype=torch.float64, requires_grad=True) for s in shapes]


@pytest.mark.parametrize(("size", "stride", "padding"), [
    ((16, 24), (4, 4), (0, 0)),  # patches: one matrix product
    ((18, 24), (4, 4), (0, 0)),  # a side that is no whole number of patches: the convolution
    ((16, 16), (2, 2), (0, 0)),  # overlapping windows: the convolution
    ((16, 16), (4, 4), (1, 1)),  # padded: the convolution
])
def test_patch_conv_equals_the_convolution(size, stride, padding):
    x, weight, bias = _leaves((2, 3, *size), (5, 3, 4, 4), (5,))
    got = patch_conv(x, weight, bias, stride, padding)
    want = F.conv2d(x, weight, bias, stride, padding)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    for g, w in zip(_grads(got, [x, weight, bias]), _grads(want, [x, weight, bias]), strict=True):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-12)


def test_patch_conv_tokens_come_out_contiguous():
    """timm flattens the projection's output to tokens: those need no copy."""
    x, weight, bias = _leaves((2, 3, 16, 16), (5, 3, 4, 4), (5,))
    assert patch_conv(x, weight, bias, (4, 4)).flatten(2).transpose(1, 2).is_contiguous()


@pytest.mark.parametrize("with_bias", [True, False])
def test_band_mix_equals_the_1x1_convolution(with_bias):
    x, weight, bias = _leaves((2, 13, 6, 5), (3, 13, 1, 1), (3,))
    bias = bias if with_bias else None
    inputs = [x, weight] + ([bias] if with_bias else [])
    got, want = band_mix(x, weight, bias), F.conv2d(x, weight, bias)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    for g, w in zip(_grads(got, inputs), _grads(want, inputs), strict=True):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-12)


def test_the_band_mix_stem_names_its_bands_on_a_wrong_channel_count():
    from rs_metapeft.bands import BandMismatchError
    from rs_metapeft.models.stem import BandMixStem

    with pytest.raises(BandMismatchError, match="band_mix stem"):
        BandMixStem(["B02", "B03", "B04", "B08"])(torch.randn(1, 3, 8, 8))


def test_the_classifier_projects_patches_by_product_with_the_backbone_keys():
    model = SpectralViTClassifier(["B02", "B03", "B04", "B08"], 4, img_size=32, patch_size=8,
                                  backbone_kwargs=TINY_VIT, stem="band_mix").double()
    proj = model.backbone.patch_embed.proj
    assert isinstance(proj, PatchProjection)
    assert {"backbone.patch_embed.proj.weight", "backbone.patch_embed.proj.bias"} <= set(
        model.state_dict())
    conv = nn.Conv2d(3, proj.out_channels, 8, 8).double()
    conv.load_state_dict(proj.state_dict())
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    torch.testing.assert_close(proj(x), conv(x), rtol=0, atol=1e-12)
