"""Hypergradients of the meta-validation loss with respect to the modulators gamma.

Pure functions over parameter dicts with :func:`torch.func.functional_call`: the model's own
tensors are never modified, so the state after an outer step is exactly the state before it (only
the caller's update of gamma changes anything). No Lightning here, so the maths is testable on a
toy model.

A look-ahead step is ``phi' = U(phi, grad_phi L_train(phi, gamma), state)`` where ``U`` is the
update rule of the optimiser the trainer really uses (:mod:`.update_rules`: AdamW with its moments
and weight decay, SGD with momentum; ``phi - lr * g`` only when asked for). The hypergradient is
``d L_meta(phi_K, gamma) / d gamma``:

* ``first_order`` ignores ``d phi_K / d gamma`` (what the authors' released code does);
* ``unrolled`` differentiates through one look-ahead step ``U`` (exact for that step), which needs
  a double backward through the network;
* ``unrolled_k`` differentiates through K look-ahead steps, optimiser state carried along.

:func:`step_hypergradient` is the cheap variant the trainer uses: the look-ahead step *is* the
inner training step (``phi' = U(phi, g)`` with the gradient ``g`` training computed anyway), so an
outer step costs one forward/backward on a meta-validation batch, plus one Hessian-vector product
when unrolled. For an elementwise ``U`` the path through ``phi'`` is
``d/d gamma [g(gamma) . w]`` with ``w = (d U / d g)^T v`` and ``v = grad_phi' L_meta``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..choices import check_choice
from ..peft.modulator import split_parameters
from .update_rules import LookaheadRule

__all__ = [
    "HYPERGRADIENT_MODES",
    "Hypergradient",
    "HypergradientMode",
    "Lookahead",
    "activations_kept",
    "OuterStepPlan",
    "lookahead_hypergradient",
    "outer_step_plan",
    "split_parameters",
    "step_hypergradient",
]

#: ``first_order``, ``unrolled`` (one look-ahead step) and ``unrolled_k`` (K steps).
HypergradientMode = Literal["first_order", "unrolled", "unrolled_k"]
HYPERGRADIENT_MODES = get_args(HypergradientMode)
#: ``train_step``: the inner training step is the look-ahead; ``meta_train``: separate steps.
Lookahead = Literal["train_step", "meta_train"]


@dataclass(frozen=True)
class OuterStepPlan:
    """How an outer step gets its hypergradient; decided once, by :func:`outer_step_plan`.

    Attributes:
        train_step: the inner training step is the look-ahead (:func:`step_hypergradient`);
            otherwise separate look-ahead steps on meta-train batches
            (:func:`lookahead_hypergradient`).
        unrolled: differentiate through the look-ahead (``False``: first order).
    """

    train_step: bool
    unrolled: bool


def outer_step_plan(hypergradient: HypergradientMode,
                    lookahead: Lookahead = "train_step") -> OuterStepPlan:
    """Decide the look-ahead and the differentiation of an outer step.

    ``unrolled_k`` always takes separate look-ahead steps (the inner step is only one step);
    ``first_order`` and ``unrolled`` take the one ``lookahead`` asks for.

    Args:
        hypergradient: one of :data:`HYPERGRADIENT_MODES`.
        lookahead: ``train_step`` or ``meta_train``.

    Raises:
        ValueError: an unknown mode or look-ahead, naming the valid ones.
    """
    check_choice(hypergradient, HypergradientMode, "hypergradient mode (model.meta.hypergradient)")
    check_choice(lookahead, Lookahead, "model.meta.lookahead")
    return OuterStepPlan(train_step=lookahead == "train_step" and hypergradient != "unrolled_k",
                         unrolled=hypergradient != "first_order")

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Batch = tuple[torch.Tensor, torch.Tensor]


def _rule(rule: LookaheadRule | float, names) -> LookaheadRule:
    """A float is a plain SGD step of that size (``phi - lr * g``), for toy models and tests."""
    if isinstance(rule, LookaheadRule):
        return rule
    return LookaheadRule("plain_sgd", {n: {"lr": float(rule)} for n in names})


@dataclass
class Hypergradient:
    """Result of one outer-step computation.

    Attributes:
        grads: gradient of the meta loss for each gamma parameter, by name.
        train_loss: look-ahead (meta-train) loss of the first step.
        meta_loss: meta-validation loss after the look-ahead.
        replayed_loss: the training loss recomputed for the Hessian-vector product of
            :func:`step_hypergradient` (equal to ``train_loss`` when the forward is replayed
            exactly); ``None`` when nothing was recomputed.

    """

    grads: dict[str, torch.Tensor]
    train_loss: float
    meta_loss: float
    replayed_loss: float | None = None

    @property
    def finite(self) -> bool:
        """Whether every gradient entry is finite."""
        return all(bool(torch.isfinite(g).all()) for g in self.grads.values())


@contextlib.contextmanager
def activations_kept(model: nn.Module):
    """Switch off timm's activation checkpointing in ``model`` for the block (restored after).

    The hypergradients run the model through :func:`torch.func.functional_call`, whose swapped-in
    parameters are gone by the time a checkpointed block would recompute its activations in
    backward (it would recompute with the module's own tensors, and PyTorch refuses). The outer
    step therefore keeps its activations; the inner steps still recompute theirs.
    """
    switched = [m for m in model.modules() if getattr(m, "grad_checkpointing", False)]
    for m in switched:
        m.grad_checkpointing = False
    try:
        yield
    finally:
        for m in switched:
            m.grad_checkpointing = True


def _keeps_activations(hypergradient_fn):
    @functools.wraps(hypergradient_fn)
    def wrapper(model: nn.Module, *args, **kwargs):
        with activations_kept(model):
            return hypergradient_fn(model, *args, **kwargs)
    return wrapper


@_keeps_activations
def lookahead_hypergradient(
    model: nn.Module,
    loss_fn: LossFn,
    train_batches: Sequence[Batch],
    meta_batch: Batch,
    rule: LookaheadRule | float,
    mode: str = "unrolled",
) -> Hypergradient:
    """Gradient of the meta loss after look-ahead steps of the inner optimiser, w.r.t. gamma.

    Args:
        model: the model (left untouched).
        loss_fn: ``loss_fn(logits, labels)``.
        train_batches: one (image, label) batch per look-ahead step (K = its length).
        meta_batch: the meta-validation (image, label) batch.
        rule: the inner optimiser's update rule
            (:func:`~rs_metapeft.meta.update_rules.rule_from_optimizer`); its state is carried
            from step to step. A float is a plain SGD step of that size.
        mode: ``"unrolled"`` / ``"unrolled_k"`` (differentiate through the look-ahead; the two
            differ only in the number of steps the caller passes) or ``"first_order"``.

    Returns:
        The hypergradient and the losses.

    """
    unrolled = outer_step_plan(mode, "meta_train").unrolled
    if not train_batches:
        raise ValueError("at least one look-ahead batch is needed")
    phi, gamma_live = split_parameters(model)
    if not gamma_live:
        raise ValueError("the model has no modulators (PEFT modules with a gamma)")
    rule = _rule(rule, phi)
    gamma = {n: p.detach().clone().requires_grad_(True) for n, p in gamma_live.items()}
    names = list(phi)
    current = dict(phi)
    state = None
    first_loss = None
    with contextlib.ExitStack() as stack:
        if unrolled:  # CPU flash attention has no double backward; the math kernel has
            stack.enter_context(sdpa_kernel(SDPBackend.MATH))
        for images, labels in train_batches:
            loss = loss_fn(functional_call(model, {**current, **gamma}, (images,)), labels)
            first_loss = loss.detach() if first_loss is None else first_loss
            grads = torch.autograd.grad(
                loss, [current[n] for n in names], create_graph=unrolled, allow_unused=True
            )
            if not unrolled:
                grads = [None if g is None else g.detach() for g in grads]
            current, state = rule.step(current, dict(zip(names, grads, strict=True)), state)
            if not unrolled:
                current = {n: t.detach() for n, t in current.items()}
        images, labels = meta_batch
        meta_loss = loss_fn(functional_call(model, {**current, **gamma}, (images,)), labels)
        hyper = torch.autograd.grad(meta_loss, list(gamma.values()), allow_unused=True)
    grads = {
        n: torch.zeros_like(gamma[n]) if g is None else g.detach()
        for n, g in zip(gamma, hyper, strict=True)
    }
    return Hypergradient(grads, float(first_loss), float(meta_loss.detach()))


def _zeros_if_none(grads, like):
    return [torch.zeros_like(t) if g is None else g for g, t in zip(grads, like, strict=True)]


@_keeps_activations
def step_hypergradient(
    model: nn.Module,
    loss_fn: LossFn,
    train_batch: Batch,
    train_grads: dict[str, torch.Tensor | None],
    meta_batch: Batch,
    rule: LookaheadRule | float,
    mode: str = "unrolled",
    train_loss: float = float("nan"),
    rng_state: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None,
    hvp_batch_size: int | None = None,
) -> Hypergradient:
    """Hypergradient with the inner training step itself as the one-step look-ahead.

    ``phi' = U(phi, train_grads)``, the step the optimiser is about to take; the meta loss
    ``L_meta(phi', gamma)`` on ``meta_batch`` is differentiated with respect to gamma.
    ``unrolled`` adds the path through ``phi'``: ``d/d gamma [grad_phi L_train(phi, gamma) . w]``
    with ``w = (dU/dg)^T v`` and ``v = grad_phi' L_meta``, a Hessian-vector product on
    ``train_batch``. The model, its ``.grad`` fields and the optimiser are left untouched, so the
    caller's real optimiser step is exactly the plain one.

    Args:
        model: the model at the parameters ``train_grads`` were computed at.
        loss_fn: ``loss_fn(logits, labels)``.
        train_batch: the training batch ``train_grads`` came from (used when unrolled).
        train_grads: gradient of the training loss per trainable non-gamma parameter name.
        meta_batch: the meta-validation batch.
        rule: the inner optimiser's update rule
            (:func:`~rs_metapeft.meta.update_rules.rule_from_optimizer`); a float is a plain SGD
            step of that size.
        mode: ``first_order`` or ``unrolled`` (``unrolled_k`` needs separate look-ahead
            batches: use :func:`lookahead_hypergradient`).
        train_loss: the training loss, reported back in the result.
        rng_state: RNG state before the training forward (the CPU state, or a
            ``(cpu, cuda)`` pair for the current CUDA device); restored for the recomputed
            training forward so dropout masks match the real step.
        hvp_batch_size: images of ``train_batch`` (its first ones) in the Hessian-vector product;
            ``None`` (or at least the batch size) uses all of them and is exact. With fewer it is
            an estimate: ``w`` still comes from the whole batch's gradient, the product from the
            sub-batch (unbiased for a mean loss), and replayed dropout masks differ from the step's.

    Returns:
        The hypergradient and the losses.

    """
    if hvp_batch_size is not None and hvp_batch_size < 1:
        raise ValueError(f"hvp_batch_size must be >= 1 or None, got {hvp_batch_size}")
    plan = outer_step_plan(mode, "train_step")
    if not plan.train_step:
        raise ValueError(f"step_hypergradient supports first_order and unrolled, got {mode!r}")
    phi, gamma_live = split_parameters(model)
    if not gamma_live:
        raise ValueError("the model has no modulators (PEFT modules with a gamma)")
    missing = [n for n in phi if n not in train_grads]
    if missing:
        raise ValueError(f"train_grads lacks gradients of {missing[:3]}")
    rule = _rule(rule, phi)
    unrolled = plan.unrolled
    gamma = {n: p.detach().clone().requires_grad_(True) for n, p in gamma_live.items()}
    names = list(phi)
    grads_now = {n: None if train_grads[n] is None else train_grads[n].detach() for n in names}
    with torch.no_grad():
        stepped, _ = rule.step({n: phi[n].detach() for n in names}, grads_now)
    nxt = {n: stepped[n].detach().requires_grad_(unrolled) for n in names}
    images, labels = meta_batch
    meta_loss = loss_fn(functional_call(model, {**nxt, **gamma}, (images,)), labels)
    inputs = list(gamma.values()) + ([nxt[n] for n in names] if unrolled else [])
    grads = _zeros_if_none(torch.autograd.grad(meta_loss, inputs, allow_unused=True), inputs)
    hyper = dict(zip(gamma, grads[: len(gamma)], strict=True))
    replayed = None
    if unrolled:
        v = dict(zip(names, grads[len(gamma):], strict=True))
        w = rule.vjp_through_grads(phi, grads_now, v)
        images, labels = train_batch
        if hvp_batch_size is not None:
            images, labels = images[:hvp_batch_size], labels[:hvp_batch_size]
        with contextlib.ExitStack() as stack:
            stack.enter_context(sdpa_kernel(SDPBackend.MATH))  # double backward needs the math path
            if rng_state is not None:
                cpu, cuda = rng_state if isinstance(rng_state, tuple) else (rng_state, None)
                devices = [torch.cuda.current_device()] if cuda is not None else []
                stack.enter_context(torch.random.fork_rng(devices=devices))
                torch.set_rng_state(cpu)
                if cuda is not None:
                    torch.cuda.set_rng_state(cuda)
            loss = loss_fn(functional_call(model, {**phi, **gamma}, (images,)), labels)
            replayed = float(loss.detach())
            stepped_names = list(w)
            params = [phi[n] for n in stepped_names]
            g = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
            dot = sum((gi * w[n]).sum() for n, gi in zip(stepped_names, g, strict=True)
                      if gi is not None and gi.requires_grad)
            if torch.is_tensor(dot) and dot.requires_grad:
                mixed = _zeros_if_none(
                    torch.autograd.grad(dot, list(gamma.values()), allow_unused=True),
                    list(gamma.values()),
                )
                hyper = {n: hyper[n] + m for (n, m) in zip(gamma, mixed, strict=True)}
    return Hypergradient({n: h.detach() for n, h in hyper.items()}, float(train_loss),
                         float(meta_loss.detach()), replayed)
