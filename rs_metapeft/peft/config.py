"""Where PEFT modules go and how they are sized: one spec of positions x layers."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ADAPTER_POSITIONS", "LORA_POSITIONS", "POSITIONS", "PeftConfig"]

#: LoRA positions inside a ViT block: slices of the fused qkv, attention output, MLP layers.
LORA_POSITIONS = ("q", "k", "v", "o", "fc1", "fc2")
#: Adapter positions (a module per block rather than per linear layer).
ADAPTER_POSITIONS = ("adaptformer",)
POSITIONS = LORA_POSITIONS + ADAPTER_POSITIONS


@dataclass
class PeftConfig:
    """Which PEFT modules to insert, and their hyperparameters.

    MetaPEFT inserts a module at every candidate (layer, position) and lets the meta step learn a
    modulator gamma for each; the fixed-hyperparameter baselines pick a few positions instead.

    Attributes:
        positions: any of ``q, k, v, o, fc1, fc2`` (LoRA) and ``adaptformer``.
        layers: block indices to adapt (negative counts from the end); ``None`` means all.
        rank: LoRA rank.
        alpha: LoRA scaling alpha (the update is scaled by alpha / rank).
        dropout: dropout on PEFT inputs.
        bottleneck: AdaptFormer hidden width.
        adapter_alpha: AdaptFormer scaling.
        gamma_param: ``identity`` (gamma as is) or ``softplus`` (keeps the effective gamma > 0).
    """

    positions: list[str] = field(default_factory=lambda: list(POSITIONS))
    layers: list[int] | None = None
    rank: int = 4
    alpha: float = 1.0
    dropout: float = 0.0
    bottleneck: int = 8
    adapter_alpha: float = 0.1
    gamma_param: str = "identity"

    def __post_init__(self) -> None:
        unknown = [p for p in self.positions if p not in POSITIONS]
        if unknown:
            raise ValueError(
                f"model.peft.positions: unknown positions {unknown}; valid: {', '.join(POSITIONS)}"
            )
        if self.gamma_param not in ("identity", "softplus"):
            raise ValueError(
                f"model.peft.gamma_param must be identity or softplus, got {self.gamma_param!r}"
            )

    def resolve_layers(self, depth: int) -> list[int]:
        """The adapted block indices for a backbone of ``depth`` blocks."""
        if self.layers is None:
            return list(range(depth))
        resolved = sorted({i % depth for i in self.layers if -depth <= i < depth})
        bad = [i for i in self.layers if not -depth <= i < depth]
        if bad:
            raise ValueError(f"model.peft.layers: {bad} out of range for a {depth}-block backbone")
        return resolved
