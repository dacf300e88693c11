"""Patch embeddings and band mixing as matrix products (the convolutions they are, done faster).

A patch embedding is a convolution whose stride equals its kernel: every output sees one
patch and no patch twice, so it is one matrix product over the image cut into patches. A 1x1
band mixing is a matrix product over each pixel's bands. Every fit with a trained stem pays
the backward of both, which the frozen floor never computes; on a CPU, oneDNN's convolution
backward ran several times slower than these products (``benchmarks/speed.py``'s linear-probe
row against the floor shows what is left). The results, gradients included, are the
convolutions' (tested in float64).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["PatchProjection", "band_mix", "patch_conv"]


def patch_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
               stride: tuple[int, int], padding: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, stride, padding)``, as one matrix product where it can be.

    Where the kernel equals the stride, there is no padding and the image's sides are whole
    multiples of the patch, the image is cut into patches (a copy of the input) and multiplied
    with the flattened kernel; any other case runs the convolution.

    Returns:
        ``(B, D, H / p, W / p)``, as the convolution; the result's memory is in channels-last
        order, so timm's ``flatten(2).transpose(1, 2)`` gives contiguous tokens.
    """
    out_ch, in_ch, ph, pw = weight.shape
    b, c, h, w = x.shape
    if (tuple(stride) != (ph, pw) or any(padding) or c != in_ch or h % ph or w % pw):
        return F.conv2d(x, weight, bias, stride, padding)
    rows, cols = h // ph, w // pw
    patches = (x.reshape(b, c, rows, ph, cols, pw).permute(0, 2, 4, 1, 3, 5)
               .reshape(b * rows * cols, c * ph * pw))
    tokens = F.linear(patches, weight.reshape(out_ch, -1), bias)
    return tokens.view(b, rows, cols, out_ch).permute(0, 3, 1, 2)


def band_mix(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A 1x1 convolution ``(K, C, 1, 1)`` of a ``(B, C, H, W)`` image as one batched product."""
    b, c, h, w = x.shape
    k = weight.shape[0]
    # the weight expanded over the batch (a view): one batched product, no copy of the image
    mixing = weight.reshape(1, k, c).expand(b, k, c)
    pixels = x.reshape(b, c, h * w)
    if bias is None:
        return torch.bmm(mixing, pixels).view(b, k, h, w)
    return torch.baddbmm(bias.reshape(1, k, 1).expand(b, k, 1), mixing, pixels).view(b, k, h, w)


class PatchProjection(nn.Conv2d):
    """timm's patch-embedding convolution computed by :func:`patch_conv`.

    It holds the same ``weight`` and ``bias`` parameters (the state-dict keys do not change).
    """

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> PatchProjection:
        """A projection that shares ``conv``'s parameters and settings."""
        proj = cls.__new__(cls)
        nn.Module.__init__(proj)
        for name in ("in_channels", "out_channels", "kernel_size", "stride", "padding",
                     "dilation", "transposed", "output_padding", "groups", "padding_mode",
                     "_reversed_padding_repeated_twice"):
            setattr(proj, name, getattr(conv, name))
        proj.weight, proj.bias = conv.weight, conv.bias
        return proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if self.dilation != (1, 1) or self.groups != 1 or self.padding_mode != "zeros":
            return super().forward(x)
        return patch_conv(x, self.weight, self.bias, self.stride, self.padding)
