"""LoRA with a modulator, on any ``nn.Linear`` (or on slices of timm's fused qkv projection)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .modulator import ModulatedModule
from .products import token_product

__all__ = ["LoRA", "LoRALinear", "merged_lora_linear"]


class _MergedLoRALinear(torch.autograd.Function):
    """``x (W + S A)^T + b`` as one full-width product, forward and backward.

    Written out, a LoRA layer runs three full-width passes besides its base product: the update
    ``(x A^T) S^T`` is materialised at the layer's output width, added to the base output, and in
    backward the two paths' input gradients are summed. Here the low-rank update is merged into
    the (small) weight first, so forward is the base layer's one product, ``grad_x`` is one
    product with the merged weight, and only the factors' own gradients touch the rank-r
    intermediates (``u = x A^T`` is recomputed, not kept). ``S`` comes as its diagonal blocks
    (one per output slice: q, k, v of a fused projection), so backward never multiplies the
    zeros between them. Backward is written in differentiable operations, so the meta step's
    second-order gradients flow through it. Under autocast the big products run in the
    gradient's dtype, as autocast's own ``linear`` would.
    """

    @staticmethod
    def forward(x, weight, bias, lora_A, *blocks):  # noqa: D102
        return F.linear(x, weight + torch.block_diag(*blocks) @ lora_A, bias)

    @staticmethod
    def setup_context(ctx, inputs, output):  # noqa: D102
        x, weight, bias, lora_A, *blocks = inputs
        ctx.save_for_backward(x, weight, lora_A, *blocks)
        ctx.bias_dtype = None if bias is None else bias.dtype

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        x, weight, lora_A, *blocks = ctx.saved_tensors
        need_x, need_w, need_b, need_a, *need_blocks = ctx.needs_input_grad
        dtype = grad.dtype
        g2 = grad.reshape(-1, grad.shape[-1])
        x2 = x.reshape(-1, x.shape[-1]).to(dtype)
        grad_x = grad_w = grad_b = grad_a = None
        grad_blocks = [None] * len(blocks)
        if need_x:
            merged = (weight + torch.block_diag(*blocks) @ lora_A).to(dtype)
            grad_x = (grad @ merged).to(x.dtype)
        if need_w:
            grad_w = (g2.T @ x2).to(weight.dtype)
        if need_b:
            grad_b = g2.sum(0).to(ctx.bias_dtype)
        # The rank-r products are memory-bound, and the BLAS's speed on them depends on the
        # layout by up to 5x: each is written in the layout measured fastest (a small factor as
        # the contiguous right operand of a ``linear``; sums over tokens by token_product).
        u = F.linear(x2, lora_A.to(dtype)) if any(need_blocks) else None
        projected = []  # grad_j S_j per block with a rank, side by side: grad (block_diag S)
        row = rank = 0
        for j, (block, needed) in enumerate(zip(blocks, need_blocks, strict=True)):
            rows, ranks = block.shape
            g_block = g2 if rows == g2.shape[1] else g2[:, row:row + rows]
            if ranks and need_a:
                projected.append(F.linear(g_block, block.to(dtype).T.contiguous()))
            if ranks and needed:
                # contiguous, as the factor: a fused optimiser reads a grad in its param's layout
                grad_blocks[j] = token_product(u[:, rank:rank + ranks],
                                               g_block).T.contiguous().to(block.dtype)
            row, rank = row + rows, rank + ranks
        if need_a:
            grad_a = token_product(torch.cat(projected, dim=1), x2).to(lora_A.dtype)
        return grad_x, grad_w, grad_b, grad_a, *grad_blocks


def merged_lora_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                       lora_A: torch.Tensor,
                       scaled_B: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """``F.linear(x, weight, bias) + F.linear(F.linear(x, lora_A), B)`` at the base cost.

    Args:
        x: input ``(..., in)``.
        weight: the base weight ``(out, in)``.
        bias: the base bias ``(out,)`` or ``None``.
        lora_A: stacked ``A`` factors ``(r, in)``.
        scaled_B: ``B`` factors with their whole scale folded in: one ``(out, r)`` matrix, or
            the diagonal blocks of a block-diagonal one, one per output slice in order (a
            ``(rows, 0)`` block for a slice without LoRA).

    Returns:
        The output ``(..., out)``; gradients to every argument are exact (and differentiable).
    """
    blocks = (scaled_B,) if isinstance(scaled_B, torch.Tensor) else tuple(scaled_B)
    return _MergedLoRALinear.apply(x, weight, bias, lora_A, *blocks)


class LoRA(ModulatedModule):
    """Low-rank update ``gamma * (alpha / r) * B A x`` of one output slice of a linear layer.

    ``B`` starts at zero, so a freshly injected LoRA leaves the model unchanged.

    Args:
        in_features: input width of the adapted layer.
        out_features: width of the slice this LoRA updates.
        rank: rank r.
        alpha: scaling alpha (the update is scaled by alpha / r).
        dropout: dropout on the LoRA input.
        layer: transformer block index.
        position: position name (``q``, ``k``, ``v``, ``o``, ``fc1``, ``fc2``).
        gamma_param: ``"identity"``, ``"softplus"`` or ``"log"``.
        per_channel: one gamma per output channel of the slice instead of a scalar.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        rank: int,
        alpha: float,
        dropout: float,
        layer: int,
        position: str,
        gamma_param: str = "identity",
        per_channel: bool = False,
    ) -> None:
        shape = (out_features,) if per_channel else ()
        super().__init__(layer, position, shape, gamma_param, alpha)
        if rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {rank}")
        self.rank = rank
        self.alpha = alpha
        self.lora_A = nn.Parameter(torch.empty(rank, in_features))
        self.lora_B = nn.Parameter(torch.zeros(out_features, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    @property
    def scaling(self) -> float:
        """The LoRA scaling alpha / r."""
        return self.alpha / self.rank

    def scaled_B(self) -> torch.Tensor:
        """``B`` with the module's whole scale, ``gamma * alpha / r``, folded into its rows.

        Scaling the small ``out x r`` factor instead of the layer's full-width output costs
        ``out * r`` multiplications rather than one per output element and token, keeps no
        extra full-width activation for backward, and leaves the gradients to gamma exact.
        """
        scale = self.modulation() * self.scaling
        if scale.dim():  # per output channel: one factor per row of B
            scale = scale.unsqueeze(-1)
        return self.lora_B * scale

    def delta_weight(self) -> torch.Tensor:
        """The modulated weight update ``gamma * (alpha/r) * B A`` (out x in)."""
        return self.scaled_B() @ self.lora_A

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The modulated update of this slice for input ``x``."""
        return F.linear(F.linear(self.dropout(x), self.lora_A), self.scaled_B())


class LoRALinear(nn.Linear):
    """An ``nn.Linear`` whose output slices carry LoRA updates.

    It shares the original layer's ``weight`` and ``bias`` parameters, so the backbone's state-dict
    keys do not change; the LoRA tensors live under ``<layer>.lora.<position>``. timm's fused qkv
    projection is split into three equal slices (q, k, v), each with its own LoRA and gamma.

    Args:
        base: the layer to adapt (its parameters are reused, not copied).
        slices: names of the output slices in order (``("q", "k", "v")`` for qkv, else one name).
    """

    def __init__(self, base: nn.Linear, slices: tuple[str, ...]) -> None:
        nn.Module.__init__(self)
        self.in_features = base.in_features
        self.out_features = base.out_features
        self.weight = base.weight
        self.bias = base.bias
        if base.out_features % len(slices):
            raise ValueError(f"{base.out_features} outputs do not split into {len(slices)} slices")
        self.slices = slices
        self.slice_size = base.out_features // len(slices)
        self.lora = nn.ModuleDict()

    def add_lora(self, position: str, rank: int, alpha: float, dropout: float, layer: int,
                 gamma_param: str = "identity", per_channel: bool = False) -> LoRA:
        """Attach a LoRA to one slice."""
        if position not in self.slices:
            raise ValueError(f"no slice {position!r} in this layer; slices: {self.slices}")
        module = LoRA(self.in_features, self.slice_size, rank, alpha, dropout, layer, position,
                      gamma_param, per_channel).to(self.weight.device)
        self.lora[position] = module
        return module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Base projection plus every slice's modulated LoRA update, at the base layer's cost.

        The slices' ``A`` factors are stacked into one ``(sum r) x in`` matrix and their scaled
        ``B`` factors placed block-diagonally into one ``out x (sum r)`` matrix (zero rows for
        slices without LoRA); :func:`merged_lora_linear` folds their product into the weight,
        so q, k and v add no full-width work in forward or backward. With LoRA dropout in
        training, the update needs each slice's masked input and is computed the long way.
        """
        if not len(self.lora):
            return F.linear(x, self.weight, self.bias)
        present = [self.lora[name] for name in self.slices if name in self.lora]
        blocks = [self.lora[name].scaled_B() if name in self.lora
                  else self.weight.new_zeros(self.slice_size, 0) for name in self.slices]
        if self.training and any(not isinstance(m.dropout, nn.Identity) for m in present):
            # each LoRA draws its own dropout mask, as separate modules would
            low_rank = torch.cat([F.linear(m.dropout(x), m.lora_A) for m in present], dim=-1)
            return F.linear(x, self.weight, self.bias) + F.linear(low_rank,
                                                                  torch.block_diag(*blocks))
        return merged_lora_linear(x, self.weight, self.bias,
                                  torch.cat([m.lora_A for m in present]), blocks)

    def merged_weight(self) -> torch.Tensor:
        """The base weight with every LoRA update folded in."""
        weight = self.weight.detach().clone()
        for i, name in enumerate(self.slices):
            if name in self.lora:
                rows = slice(i * self.slice_size, (i + 1) * self.slice_size)
                weight[rows] += self.lora[name].delta_weight().detach()
        return weight

    def to_linear(self) -> nn.Linear:
        """A plain ``nn.Linear`` with every LoRA update merged into its weight."""
        merged = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                           device=self.weight.device, dtype=self.weight.dtype)
        with torch.no_grad():
            merged.weight.copy_(self.merged_weight())
            if self.bias is not None:
                merged.bias.copy_(self.bias)
        merged.requires_grad_(False)
        return merged
