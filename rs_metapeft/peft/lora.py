"""LoRA with a modulator, on any ``nn.Linear`` (or on slices of timm's fused qkv projection)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .modulator import ModulatedModule

__all__ = ["LoRA", "LoRALinear"]


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
        """Base projection plus every slice's modulated LoRA update, as one low-rank product.

        The slices' ``A`` factors are stacked into one ``(sum r) x in`` matrix and their scaled
        ``B`` factors placed block-diagonally into one ``out x (sum r)`` matrix (zero rows for
        slices without LoRA), so q, k and v cost one pair of small products and one addition
        to the fused output, with no split and concatenate of full-width tensors.
        """
        out = F.linear(x, self.weight, self.bias)
        if not len(self.lora):
            return out
        present = [self.lora[name] for name in self.slices if name in self.lora]
        if self.training and any(not isinstance(m.dropout, nn.Identity) for m in present):
            # each LoRA draws its own dropout mask, as separate modules would
            low_rank = torch.cat([F.linear(m.dropout(x), m.lora_A) for m in present], dim=-1)
        else:
            low_rank = F.linear(x, torch.cat([m.lora_A for m in present]))
        blocks = [self.lora[name].scaled_B() if name in self.lora
                  else self.weight.new_zeros(self.slice_size, 0) for name in self.slices]
        return out + F.linear(low_rank, torch.block_diag(*blocks))

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
