"""Where PEFT modules go and how they are sized: one spec of positions x layers, or a baseline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from ..choices import check_choice

__all__ = [
    "ADAPTER_POSITIONS",
    "DEFAULT_POSITIONS",
    "LORA_POSITIONS",
    "METHODS",
    "POSITIONS",
    "GammaParam",
    "GammaShape",
    "Method",
    "PeftConfig",
    "Position",
]

#: LoRA positions inside a ViT block: slices of the fused qkv, attention output, MLP layers.
LoraPosition = Literal["q", "k", "v", "o", "fc1", "fc2"]
#: Adapter positions (a module per block rather than per linear layer): AdaptFormer (parallel to
#: the MLP) and a sequential bottleneck adapter (after the MLP).
AdapterPosition = Literal["adaptformer", "adapter"]
#: Where a PEFT module can go (``model.peft.positions``).
Position = Literal[LoraPosition, AdapterPosition]
LORA_POSITIONS = get_args(LoraPosition)
ADAPTER_POSITIONS = get_args(AdapterPosition)
POSITIONS = get_args(Position)
#: What MetaPEFT inserts by default: LoRA at every linear layer and AdaptFormer (the paper's set).
DEFAULT_POSITIONS = LORA_POSITIONS + ("adaptformer",)
#: ``modulated``: PEFT modules at ``positions`` with modulators (MetaPEFT and fixed-gamma PEFT);
#: the rest are the unmodulated baselines the paper compares against.
Method = Literal["modulated", "linear_probe", "full", "bitfit", "vpt_deep"]
METHODS = get_args(Method)
#: How gamma is parametrised (see :mod:`rs_metapeft.peft.modulator`).
GammaParam = Literal["identity", "softplus", "log"]
#: One gamma per module or per output channel.
GammaShape = Literal["scalar", "channel"]


@dataclass
class PeftConfig:
    """Which PEFT modules to insert, and their hyperparameters.

    MetaPEFT inserts a module at every candidate (layer, position) and lets the meta step learn a
    modulator gamma for each; the fixed-hyperparameter baselines pick a few positions instead.

    Attributes:
        method: ``modulated`` (modules at ``positions``; ``positions: []`` is a linear probe),
            or a baseline without modulators: ``linear_probe`` (frozen backbone), ``full``
            (every backbone weight trains), ``bitfit`` (backbone biases train) or ``vpt_deep``
            (``prompts`` learned tokens at the input of every adapted layer).
        positions: any of ``q, k, v, o, fc1, fc2`` (LoRA), ``adaptformer`` and ``adapter``
            (method ``modulated`` only).
        layers: block indices to adapt (negative counts from the end); ``None`` means all.
        rank: LoRA rank.
        alpha: LoRA scaling alpha (the update is scaled by alpha / rank).
        dropout: dropout on PEFT inputs.
        bottleneck: AdaptFormer / adapter hidden width.
        adapter_alpha: AdaptFormer / adapter scaling.
        gamma_param: ``identity`` (gamma as is), ``softplus`` (keeps the effective gamma > 0) or
            ``log`` (gamma = exp(theta): multiplicative steps; see
            :mod:`rs_metapeft.peft.modulator`).
        gamma_shape: ``scalar`` (one gamma per module) or ``channel`` (one per output channel).
        prompts: VPT-deep prompt tokens per layer.
    """

    method: Method = "modulated"
    positions: list[Position] = field(default_factory=lambda: list(DEFAULT_POSITIONS))
    layers: list[int] | None = None
    rank: int = 4
    alpha: float = 1.0
    dropout: float = 0.0
    bottleneck: int = 8
    adapter_alpha: float = 0.1
    gamma_param: GammaParam = "log"
    gamma_shape: GammaShape = "scalar"
    prompts: int = 4

    def __post_init__(self) -> None:
        # The command line checks these already; Python callers (dicts) come through here.
        check_choice(self.method, Method, "model.peft.method")
        for position in self.positions:
            check_choice(position, Position, "model.peft.positions")
        check_choice(self.gamma_param, GammaParam, "model.peft.gamma_param")
        check_choice(self.gamma_shape, GammaShape, "model.peft.gamma_shape")
        if self.method == "vpt_deep" and self.prompts < 1:
            raise ValueError(f"model.peft.prompts must be >= 1 for vpt_deep, got {self.prompts}")

    @property
    def inserts_modules(self) -> bool:
        """Whether this spec inserts modulated modules (method ``modulated`` with positions)."""
        return self.method == "modulated" and bool(self.positions)

    def resolve_layers(self, depth: int) -> list[int]:
        """The adapted block indices for a backbone of ``depth`` blocks."""
        if self.layers is None:
            return list(range(depth))
        resolved = sorted({i % depth for i in self.layers if -depth <= i < depth})
        bad = [i for i in self.layers if not -depth <= i < depth]
        if bad:
            raise ValueError(f"model.peft.layers: {bad} out of range for a {depth}-block backbone")
        return resolved
