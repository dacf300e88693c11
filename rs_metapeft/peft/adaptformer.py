"""AdaptFormer: a parallel bottleneck adapter beside a ViT block's MLP, with a modulator."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .adapter import BottleneckModule, scaled_up
from .block import attach_to_block
from .products import token_product

__all__ = ["AdaptFormer", "adaptformer_branch", "attach_adaptformer"]


class _AdaptFormerBranch(torch.autograd.Function):
    """``scale * Up(relu(Down(LN(x))))`` that keeps only its inputs for backward.

    Autograd would keep the adapter's normalised input ``LN(x)``, a full-width activation per
    block, for ``Down``'s weight gradient. ``x`` itself is kept anyway (the block's own ``norm2``
    normalises the same tensor), so here ``LN(x)`` and the narrow hidden activations are
    recomputed in backward instead: the adapter then adds no full-width activation to the
    saved memory. Backward is written in differentiable operations (LayerNorm's own backward
    included), so the meta step's second-order gradients pass through it. Under autocast the
    products run in the gradient's dtype, as in the forward.
    """

    @staticmethod
    def forward(x, norm_weight, norm_bias, eps, down_weight, down_bias, up_weight, up_bias,
                scale):  # noqa: D102
        z = F.layer_norm(x, x.shape[-1:], norm_weight, norm_bias, eps)
        return scaled_up(torch.relu(F.linear(z, down_weight, down_bias)), up_weight, up_bias,
                         scale)

    @staticmethod
    def setup_context(ctx, inputs, output):  # noqa: D102
        x, norm_weight, norm_bias, eps, down_weight, down_bias, up_weight, up_bias, scale = inputs
        ctx.save_for_backward(x, norm_weight, norm_bias, down_weight, down_bias, up_weight,
                              up_bias, scale)
        ctx.eps = eps

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        x, norm_weight, norm_bias, down_weight, down_bias, up_weight, up_bias, scale = \
            ctx.saved_tensors
        need_x, need_nw, need_nb, _, need_dw, need_db, need_uw, need_ub, need_s = \
            ctx.needs_input_grad
        dtype, width = grad.dtype, x.shape[-1]
        z, mean, rstd = torch.native_layer_norm(x, [width], norm_weight, norm_bias, ctx.eps)
        g = grad.reshape(-1, width)
        z = z.reshape(-1, width).to(dtype)
        pre = F.linear(z, down_weight.to(dtype), down_bias.to(dtype))
        hidden = torch.relu(pre)
        s, up = scale.to(dtype), up_weight.to(dtype)
        rows = s.unsqueeze(-1) if s.dim() else s  # the scale of each of Up's rows
        outs = [None] * 9
        g_sum = g.sum(0)
        if need_uw or need_s:
            # (width, bottleneck): the unscaled gradient of Up
            g_hidden_up = token_product(hidden, g).T.contiguous()  # in Up's own layout
        if need_uw:
            outs[6] = (g_hidden_up * rows).to(up_weight.dtype)
        if need_ub:
            outs[7] = (g_sum * s).to(up_bias.dtype)
        if need_s:
            per_row = (g_hidden_up * up).sum(-1) + up_bias.to(dtype) * g_sum
            outs[8] = (per_row if s.dim() else per_row.sum()).to(scale.dtype)
        if need_x or need_nw or need_nb or need_dw or need_db:
            # Up's rows as the contiguous right operand of a linear: the fast layout on a CPU
            g_pre = F.linear(g, (up * rows).T.contiguous()) * (pre > 0)
            if need_dw:
                outs[4] = token_product(g_pre, z).to(down_weight.dtype)
            if need_db:
                outs[5] = g_pre.sum(0).to(down_bias.dtype)
            if need_x or need_nw or need_nb:
                g_z = (g_pre @ down_weight.to(dtype)).reshape(x.shape).to(x.dtype)
                # mean and rstd enter as constants: LayerNorm's double backward accounts for
                # their dependence on x itself.
                outs[0], outs[1], outs[2] = torch.ops.aten.native_layer_norm_backward(
                    g_z, x, [width], mean.detach(), rstd.detach(), norm_weight, norm_bias,
                    [need_x, need_nw, need_nb])
        return tuple(outs)


def adaptformer_branch(x: torch.Tensor, norm: nn.LayerNorm, down: nn.Linear, up: nn.Linear,
                       scale: torch.Tensor) -> torch.Tensor:
    """``scale * up(relu(down(norm(x))))``, keeping no activation of its own for backward.

    Args:
        x: the block's residual stream ``(..., width)``.
        norm: the adapter's LayerNorm (affine).
        down: the down projection.
        up: the up projection.
        scale: ``gamma * alpha``, a scalar or one per output channel.

    Returns:
        The branch output; gradients to every argument are exact (and differentiable).
    """
    return _AdaptFormerBranch.apply(x, norm.weight, norm.bias, norm.eps, down.weight, down.bias,
                                    up.weight, up.bias, scale)


class AdaptFormer(BottleneckModule):
    """``gamma * alpha * Up(relu(Down(LN_a(x))))``, added in parallel to the block's MLP branch.

    ``Up`` starts at zero, so a fresh adapter leaves the model unchanged. Arguments as for
    :class:`~rs_metapeft.peft.adapter.Adapter`.
    """

    def __init__(self, dim: int, bottleneck: int, alpha: float, dropout: float, layer: int,
                 gamma_param: str = "identity", per_channel: bool = False) -> None:
        super().__init__(dim, bottleneck, alpha, dropout, layer, "adaptformer", gamma_param,
                         per_channel)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the modulated adapter output for block-residual input ``x``."""
        if self.training and not isinstance(self.dropout, nn.Identity):
            return self.bottleneck(self.norm(x))  # a dropout mask cannot be recomputed
        return adaptformer_branch(x, self.norm, self.down, self.up, self.scale())


def attach_adaptformer(block: nn.Module, adapter: AdaptFormer) -> None:
    """Attach an AdaptFormer to a timm ViT block in place (its own keys stay as they were).

    Raises:
        TypeError: the block is not a standard timm ``Block``.
    """
    attach_to_block(block, "adaptformer", adapter)
