"""Settings of the outer (meta) step."""

from __future__ import annotations

from dataclasses import dataclass

from .hypergrad import HYPERGRADIENT_MODES

__all__ = ["MetaConfig"]


@dataclass
class MetaConfig:
    """How and when gamma is meta-learned.

    Attributes:
        enabled: run outer steps; ``False`` gives the fixed-gamma PEFT baseline with the same task.
        hypergradient: ``unrolled`` (through the look-ahead, exact for SGD) or ``first_order``.
        lookahead_steps: look-ahead SGD steps K before the meta-validation loss.
        every_n_steps: an outer step every N inner steps.
        warmup_steps: inner steps before the first outer step (B of a fresh LoRA is zero, so
            gamma has no gradient until the PEFT weights have moved).
        optimizer: ``adam`` or ``sgd`` for gamma.
        lr: learning rate of gamma.
        momentum: momentum of the SGD meta optimiser.
        lookahead_lr: step size of the look-ahead; ``None`` uses the inner optimiser's current LR.
        gamma_min: lower bound of the effective gamma after each outer step (``None``: unbounded).
        gamma_max: upper bound (``None``: unbounded).
    """

    enabled: bool = True
    hypergradient: str = "unrolled"
    lookahead_steps: int = 1
    every_n_steps: int = 10
    warmup_steps: int = 10
    optimizer: str = "adam"
    lr: float = 0.02
    momentum: float = 0.9
    lookahead_lr: float | None = None
    gamma_min: float | None = 0.0
    gamma_max: float | None = None

    def __post_init__(self) -> None:
        if self.hypergradient not in HYPERGRADIENT_MODES:
            raise ValueError(
                f"model.meta.hypergradient must be one of {', '.join(HYPERGRADIENT_MODES)}, "
                f"got {self.hypergradient!r}"
            )
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"model.meta.optimizer must be adam or sgd, got {self.optimizer!r}")
        if self.every_n_steps < 1 or self.lookahead_steps < 1:
            raise ValueError("model.meta.every_n_steps and lookahead_steps must be >= 1")
