"""The inner optimiser's update rule as a differentiable function, for the look-ahead step.

The unrolled hypergradient differentiates the meta loss through ``phi' = U(phi, g, state)``. ``U``
must be the update the trainer really takes: AdamW moves each weight by about ``lr`` per step
whatever the gradient's size (its moments normalise it), plain SGD by ``lr * g``. Modelling an
AdamW step as ``phi - lr * g`` sizes the look-ahead wrongly by an order of magnitude and gives a
hypergradient with ~10 % relative error; these rules reproduce ``torch.optim.AdamW`` and
``torch.optim.SGD`` (momentum, dampening, Nesterov, weight decay) elementwise, from the real
optimiser's state, in ordinary torch ops that autograd can differentiate (also twice).

A rule never modifies the optimiser or its state: it reads them and returns new tensors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

import torch

from ..choices import check_choice

__all__ = ["LOOKAHEAD_RULES", "LookaheadRule", "LookaheadRuleKind", "rule_from_optimizer"]

#: ``optimizer``: the inner optimiser's own rule; ``sgd``: ``phi - lr * g`` whatever the
#: optimiser is (the approximation earlier releases made; kept for comparison).
LookaheadRuleKind = Literal["optimizer", "sgd"]
LOOKAHEAD_RULES = get_args(LookaheadRuleKind)

Tensors = dict[str, torch.Tensor]


@dataclass
class LookaheadRule:
    """One optimiser's update, per parameter name, as a pure function of (phi, grads, state).

    Attributes:
        kind: ``adamw``, ``sgd`` (with momentum / Nesterov / weight decay as configured) or
            ``plain_sgd`` (``phi - lr * g``).
        hyper: per parameter name, its param group's settings (``lr``, ``betas``, ``eps``,
            ``weight_decay``, ``momentum``, ``dampening``, ``nesterov``).
        state: per parameter name, the optimiser state the next step starts from
            (AdamW: ``exp_avg``, ``exp_avg_sq``, ``step``; SGD: ``momentum_buffer``); missing
            or empty for a parameter the optimiser has not stepped yet.
    """

    kind: str
    hyper: dict[str, dict] = field(default_factory=dict)
    state: dict[str, dict] = field(default_factory=dict)

    def step(self, phi: Mapping[str, torch.Tensor], grads: Mapping[str, torch.Tensor | None],
             state: dict[str, dict] | None = None) -> tuple[Tensors, dict[str, dict]]:
        """One update: ``(phi', state')``. Differentiable in ``phi`` and ``grads``.

        A parameter whose gradient is ``None`` is left as it is, state included (as torch
        optimisers skip it).

        Args:
            phi: the parameters before the step.
            grads: their gradients (``None`` for unused parameters).
            state: the state to start from (default: the real optimiser's, :attr:`state`);
                pass the returned ``state'`` to chain look-ahead steps.
        """
        state = self.state if state is None else state
        new_phi: Tensors = {}
        new_state: dict[str, dict] = {}
        for name, p in phi.items():
            g = grads.get(name)
            if g is None:
                new_phi[name], new_state[name] = p, state.get(name, {})
                continue
            h = self.hyper[name]
            s = state.get(name, {})
            if self.kind == "plain_sgd":
                new_phi[name], new_state[name] = p - h["lr"] * g, s
            elif self.kind == "adamw":
                new_phi[name], new_state[name] = _adamw(p, g, s, h)
            else:
                new_phi[name], new_state[name] = _sgd(p, g, s, h)
        return new_phi, new_state

    def vjp_through_grads(self, phi: Mapping[str, torch.Tensor],
                          grads: Mapping[str, torch.Tensor | None],
                          v: Mapping[str, torch.Tensor]) -> Tensors:
        """``(d phi' / d g)^T v`` at the given gradients: the direction the HVP is taken in.

        Every rule here is elementwise, so this is ``(d phi'_i / d g_i) * v_i``. For plain SGD it
        is ``-lr * v``; for AdamW it depends on the moments.
        """
        names = [n for n in phi if grads.get(n) is not None]
        leaves = {n: grads[n].detach().requires_grad_(True) for n in names}
        with torch.enable_grad():
            new_phi, _ = self.step({n: phi[n].detach() for n in names}, leaves)
            dot = sum((new_phi[n] * v[n].detach()).sum() for n in names)
            out = torch.autograd.grad(dot, [leaves[n] for n in names], allow_unused=True)
        return {n: torch.zeros_like(leaves[n]) if o is None else o
                for n, o in zip(names, out, strict=True)}


def _adamw(p, g, s, h):
    beta1, beta2 = h["betas"]
    step = int(s.get("step", 0)) + 1
    m = s.get("exp_avg")
    v = s.get("exp_avg_sq")
    m = (1 - beta1) * g if m is None else beta1 * m + (1 - beta1) * g
    v = (1 - beta2) * g * g if v is None else beta2 * v + (1 - beta2) * g * g
    bias1 = 1 - beta1 ** step
    bias2_sqrt = (1 - beta2 ** step) ** 0.5
    decayed = p * (1 - h["lr"] * h["weight_decay"])
    new = decayed - (h["lr"] / bias1) * m / (_safe_sqrt(v) / bias2_sqrt + h["eps"])
    return new, {"exp_avg": m, "exp_avg_sq": v, "step": step}


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    # sqrt has an infinite derivative at 0 (a coordinate that never had a gradient); there the
    # update does not depend on it to first order, so take a zero derivative instead of NaN.
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))),
                       torch.zeros_like(x))


def _sgd(p, g, s, h):
    d = g + h["weight_decay"] * p if h["weight_decay"] else g
    buf = s.get("momentum_buffer")
    mu = h["momentum"]
    if mu:
        buf = d if buf is None else mu * buf + (1 - h["dampening"]) * d
        d = d + mu * buf if h["nesterov"] else buf
    return p - h["lr"] * d, ({"momentum_buffer": buf} if mu else {})


def rule_from_optimizer(optimizer: torch.optim.Optimizer, params: Mapping[str, torch.Tensor],
                        kind: LookaheadRuleKind = "optimizer",
                        lr: float | None = None) -> LookaheadRule:
    """The look-ahead rule of ``optimizer`` for the named ``params``, from its current state.

    Args:
        optimizer: the inner optimiser (``torch.optim.AdamW``, ``Adam`` without weight decay, or
            ``SGD``), with the learning rate its next step will use.
        params: the parameters by name (each must be in one of its param groups).
        kind: ``optimizer`` (the real rule) or ``sgd`` (``phi - lr * g``, an approximation).
        lr: a look-ahead step size instead of each group's current ``lr`` (``None``: the real one).

    Raises:
        ValueError: an unknown ``kind``, a parameter the optimiser does not hold, or an optimiser
            (or option, e.g. ``amsgrad``) whose rule is not modelled.
    """
    check_choice(kind, LookaheadRuleKind, "model.meta.lookahead_rule")
    groups = {id(p): group for group in optimizer.param_groups for p in group["params"]}
    missing = [n for n, p in params.items() if id(p) not in groups]
    if missing:
        raise ValueError(f"the inner optimiser does not hold {missing[:3]}")
    if kind == "sgd":
        rule_kind = "plain_sgd"
    elif isinstance(optimizer, torch.optim.AdamW | torch.optim.Adam):
        rule_kind = "adamw"
    elif isinstance(optimizer, torch.optim.SGD):
        rule_kind = "sgd"
    else:
        raise ValueError(
            f"no look-ahead rule for {type(optimizer).__name__}; use AdamW or SGD as the inner "
            "optimiser, or model.meta.lookahead_rule: sgd (an approximation)"
        )
    hyper, state = {}, {}
    for name, p in params.items():
        group = dict(groups[id(p)])
        if lr is not None:
            group["lr"] = lr
        if rule_kind == "adamw":
            if group.get("amsgrad") or group.get("maximize"):
                raise ValueError("the look-ahead models AdamW without amsgrad / maximize")
            if isinstance(optimizer, torch.optim.Adam) and not isinstance(
                    optimizer, torch.optim.AdamW) and group["weight_decay"]:
                raise ValueError("Adam's L2 weight decay is not modelled; use AdamW")
        if rule_kind == "sgd" and group.get("maximize"):
            raise ValueError("the look-ahead models SGD without maximize")
        hyper[name] = group
        s = optimizer.state.get(p, {})
        state[name] = {k: (v.detach() if torch.is_tensor(v) and k != "step" else v)
                       for k, v in s.items() if v is not None}
        if "step" in state[name]:
            state[name]["step"] = int(state[name]["step"])
    return LookaheadRule(rule_kind, hyper, state)
