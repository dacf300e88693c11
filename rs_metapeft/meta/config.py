"""Settings of the outer (meta) step."""

from __future__ import annotations

from dataclasses import dataclass

from ..choices import check_choice
from .hypergrad import HypergradientMode, Lookahead, OuterStepPlan, outer_step_plan
from .optim import MetaLRSchedule, MetaOptimizer
from .update_rules import LookaheadRuleKind

__all__ = ["MetaConfig"]


@dataclass
class MetaConfig:
    """How and when gamma is meta-learned.

    Attributes:
        enabled: run outer steps; ``False`` gives the fixed-gamma PEFT baseline with the same task.
        hypergradient: ``first_order`` (ignore d phi'/d gamma, as the released code),
            ``unrolled`` (through one look-ahead step of the inner optimiser's update rule,
            exact for that step) or ``unrolled_k`` (through ``lookahead_steps`` look-ahead steps
            on meta-train batches).
        lookahead: ``train_step`` reuses the inner training step as the look-ahead (one extra
            forward/backward per outer step; ``first_order`` and ``unrolled`` only) or
            ``meta_train`` takes separate look-ahead steps on meta-train batches (the
            released code's way; always used by ``unrolled_k``).
        lookahead_steps: look-ahead steps K (``unrolled_k`` and first-order ``meta_train``).
        lookahead_rule: ``optimizer`` (default): the look-ahead is the update the inner
            optimiser really takes (AdamW with its moments and weight decay, SGD with momentum),
            and the unrolled hypergradient differentiates through it; ``sgd``: model it as
            ``phi - lr * g`` whatever the optimiser (an approximation: for AdamW it mis-sizes
            the step about 12x and the hypergradient by ~10 %; kept for comparison).
        every_n_steps: an outer step every N inner steps.
        warmup_steps: inner steps before the first outer step (B of a fresh LoRA is zero, so
            gamma has no gradient until the PEFT weights have moved); outer steps then run at
            steps ``warmup_steps + i * every_n_steps``.
        optimizer: ``normalized_sgd`` (the hypergradient's direction, with a step of global
            length ``lr``: keeps the ranking across modules), ``adam`` (per-coordinate sign-like
            steps of about ``lr``) or ``sgd``; see :mod:`rs_metapeft.meta.optim`.
        lr: learning rate of gamma (for ``normalized_sgd`` the length of one step in the raw
            parameter's units: with the ``log`` parametrisation, log-scale).
        lr_schedule: ``cosine`` (over the run's outer steps) or ``constant``.
        momentum: momentum of the ``sgd`` and ``normalized_sgd`` meta optimisers.
        lookahead_lr: step size of the look-ahead; ``None`` uses the inner optimiser's current LR.
        hvp_batch_size: ``unrolled`` with the ``train_step`` look-ahead only: take the
            Hessian-vector product (the costly double backward) on this many images of the
            training batch, an unbiased estimate of the exact term; ``None`` uses the whole batch
            (exact). ``benchmarks/step_time.py --components`` shows cost and fidelity per size.
        gamma_min: lower bound of the effective gamma after each outer step (``None``: unbounded);
            respected for every parametrisation (a bound a positive gamma never reaches, such
            as 0 for ``log``, is no constraint).
        gamma_max: upper bound (``None``: unbounded).
        off_threshold: the report lists a module as switched off when its effective scale
            (alpha * gamma) is below this fraction of its initial scale.

    """

    enabled: bool = True
    hypergradient: HypergradientMode = "unrolled"
    lookahead: Lookahead = "train_step"
    lookahead_steps: int = 1
    lookahead_rule: LookaheadRuleKind = "optimizer"
    every_n_steps: int = 10
    warmup_steps: int = 20
    optimizer: MetaOptimizer = "normalized_sgd"
    lr: float = 0.3
    lr_schedule: MetaLRSchedule = "cosine"
    momentum: float = 0.0
    lookahead_lr: float | None = None
    hvp_batch_size: int | None = 8
    gamma_min: float | None = 0.0
    gamma_max: float | None = None
    off_threshold: float = 0.05

    def __post_init__(self) -> None:
        # The command line checks the choices already; Python callers (dicts) come through here.
        outer_step_plan(self.hypergradient, self.lookahead)  # names a bad mode or look-ahead
        check_choice(self.optimizer, MetaOptimizer, "model.meta.optimizer")
        check_choice(self.lr_schedule, MetaLRSchedule, "model.meta.lr_schedule")
        check_choice(self.lookahead_rule, LookaheadRuleKind, "model.meta.lookahead_rule")
        if self.every_n_steps < 1 or self.lookahead_steps < 1 or self.warmup_steps < 0:
            raise ValueError(
                "model.meta.every_n_steps and lookahead_steps must be >= 1, warmup_steps >= 0"
            )
        if self.hypergradient == "unrolled" and self.lookahead_steps != 1:
            raise ValueError(
                "model.meta.hypergradient unrolled is one look-ahead step; use unrolled_k for "
                f"lookahead_steps={self.lookahead_steps}"
            )
        if self.uses_train_step and self.lookahead_steps != 1:
            raise ValueError(
                "model.meta.lookahead train_step is one look-ahead step; set lookahead: meta_train "
                "for several"
            )
        if self.hvp_batch_size is not None and self.hvp_batch_size < 1:
            raise ValueError(
                f"model.meta.hvp_batch_size must be >= 1 or null, got {self.hvp_batch_size}"
            )
        if self.lr <= 0:
            raise ValueError(f"model.meta.lr must be > 0, got {self.lr}")
        if (self.gamma_min is not None and self.gamma_max is not None
                and self.gamma_min > self.gamma_max):
            raise ValueError("model.meta.gamma_min must not exceed gamma_max")

    @property
    def plan(self) -> OuterStepPlan:
        """Look-ahead and differentiation of the outer step (:func:`.outer_step_plan`)."""
        return outer_step_plan(self.hypergradient, self.lookahead)

    @property
    def uses_train_step(self) -> bool:
        """Whether the outer step reuses the inner training step as its look-ahead."""
        return self.plan.train_step

    def is_outer_step(self, step: int) -> bool:
        """Whether an outer step runs with the inner step ``step`` (0-based global step)."""
        return step >= self.warmup_steps and (step - self.warmup_steps) % self.every_n_steps == 0
