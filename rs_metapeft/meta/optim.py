"""Optimisers and schedules of the modulators gamma (the outer, meta step).

Adam normalises every coordinate on its own: after a few steps each gamma moves by about ``lr``
in the sign of its hypergradient, so a consistent ranking across modules (one pushed much harder
than another) becomes equal steps, and with a handful of outer steps no gamma travels far.
:class:`NormalizedSGD` keeps the hypergradient's direction and sets only the length of the step
(its global L2 norm over all modulators), so modules move in proportion to their hypergradient and
the meta learning rate is a distance per outer step in the raw parameter's units (for the ``log``
parametrisation: a log-scale factor).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal, get_args

import torch

from ..choices import check_choice

__all__ = ["META_LR_SCHEDULES", "META_OPTIMIZERS", "MetaLRSchedule", "MetaOptimizer",
           "NormalizedSGD", "build_meta_optimizer", "meta_lr_factor"]

#: The meta optimisers (``model.meta.optimizer``).
MetaOptimizer = Literal["normalized_sgd", "adam", "sgd"]
META_OPTIMIZERS = get_args(MetaOptimizer)
#: Schedules of the meta learning rate over the run's outer steps (``model.meta.lr_schedule``).
MetaLRSchedule = Literal["constant", "cosine"]
META_LR_SCHEDULES = get_args(MetaLRSchedule)
#: The smallest multiplier of the cosine meta-lr schedule.
COSINE_FLOOR = 0.1


class NormalizedSGD(torch.optim.Optimizer):
    """SGD whose step has a set global length: ``theta -= lr * d / ||d||`` over all parameters.

    ``d`` is the gradient, or with ``momentum`` a heavy-ball buffer of normalised gradients
    (``buf = momentum * buf + g / ||g||``), so ``lr`` stays the length of a step for
    ``momentum = 0`` and bounds it by ``lr / (1 - momentum)`` otherwise. A zero gradient takes
    no step.

    Args:
        params: the modulators.
        lr: length of one step (global L2 norm over every parameter).
        momentum: heavy-ball momentum on the normalised directions.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 0.1,
                 momentum: float = 0.0) -> None:
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        super().__init__(params, {"lr": lr, "momentum": momentum})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 - torch.optim.Optimizer.step
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        grads = [p.grad for group in self.param_groups for p in group["params"]
                 if p.grad is not None]
        if not grads:
            return loss
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        if not torch.isfinite(norm) or norm == 0:
            return loss
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                direction = p.grad / norm
                if group["momentum"]:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    buf = direction.clone() if buf is None else buf.mul_(group["momentum"]).add_(
                        direction)
                    state["momentum_buffer"] = buf
                    direction = buf
                p.add_(direction, alpha=-group["lr"])
        return loss


def build_meta_optimizer(params: list[torch.Tensor], name: MetaOptimizer, lr: float,
                         momentum: float = 0.0) -> torch.optim.Optimizer:
    """The meta optimiser named by ``model.meta.optimizer``.

    Args:
        params: the modulators.
        name: ``normalized_sgd``, ``adam`` or ``sgd``.
        lr: meta learning rate.
        momentum: momentum of ``sgd`` and ``normalized_sgd``.
    """
    if check_choice(name, MetaOptimizer, "model.meta.optimizer") == "normalized_sgd":
        return NormalizedSGD(params, lr=lr, momentum=momentum)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    return torch.optim.Adam(params, lr=lr)


def meta_lr_factor(schedule: MetaLRSchedule, outer_step: int, total_outer_steps: int) -> float:
    """Multiplier of the meta learning rate at ``outer_step`` (0-based) of ``total_outer_steps``.

    ``cosine`` decays from 1 to :data:`COSINE_FLOOR` over the run's outer steps (large moves early,
    small ones once the inner weights have adapted to the scales; the floor keeps every outer
    step, also one past the planned count, a real step), ``constant`` keeps 1.
    """
    check_choice(schedule, MetaLRSchedule, "model.meta.lr_schedule")
    if schedule == "constant" or total_outer_steps <= 1:
        return 1.0
    progress = min(outer_step / total_outer_steps, 1.0)
    return COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + math.cos(math.pi * progress))

