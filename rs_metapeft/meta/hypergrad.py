"""Hypergradients of the meta-validation loss with respect to the modulators gamma.

Pure functions over parameter dicts with :func:`torch.func.functional_call`: the model's own
tensors are never modified, so the state after an outer step is exactly the state before it (only
the caller's update of gamma changes anything). No Lightning here, so the maths is testable on a
toy model.

For look-ahead steps ``phi_k = phi_{k-1} - lr * grad_phi L_train(phi_{k-1}, gamma)`` the
hypergradient is ``d L_meta(phi_K, gamma) / d gamma``:

* ``first_order`` ignores ``d phi_K / d gamma`` (what the authors' released code does);
* ``unrolled`` differentiates through the look-ahead steps (exact for SGD steps), which needs a
  double backward through the network.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..peft.modulator import is_gamma

__all__ = ["HYPERGRADIENT_MODES", "Hypergradient", "lookahead_hypergradient", "split_parameters"]

HYPERGRADIENT_MODES = ("first_order", "unrolled")

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Hypergradient:
    """Result of one outer-step computation.

    Attributes:
        grads: gradient of the meta loss for each gamma parameter, by name.
        train_loss: look-ahead (meta-train) loss of the first step.
        meta_loss: meta-validation loss after the look-ahead.
    """

    grads: dict[str, torch.Tensor]
    train_loss: float
    meta_loss: float

    @property
    def finite(self) -> bool:
        """Whether every gradient entry is finite."""
        return all(bool(torch.isfinite(g).all()) for g in self.grads.values())


def split_parameters(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(phi, gamma): the trainable non-modulator parameters, and the modulators."""
    phi = {n: p for n, p in model.named_parameters() if p.requires_grad and not is_gamma(n)}
    gamma = {n: p for n, p in model.named_parameters() if is_gamma(n)}
    return phi, gamma


def lookahead_hypergradient(
    model: nn.Module,
    loss_fn: LossFn,
    train_batches: Sequence[Batch],
    meta_batch: Batch,
    lr: float,
    mode: str = "unrolled",
) -> Hypergradient:
    """Gradient of the meta loss after look-ahead SGD steps, with respect to gamma.

    Args:
        model: the model (left untouched).
        loss_fn: ``loss_fn(logits, labels)``.
        train_batches: one (image, label) batch per look-ahead step (K = its length).
        meta_batch: the meta-validation (image, label) batch.
        lr: look-ahead step size (the inner optimiser's current learning rate).
        mode: ``"unrolled"`` (differentiate through the look-ahead) or ``"first_order"``.

    Returns:
        The hypergradient and the losses.
    """
    if mode not in HYPERGRADIENT_MODES:
        raise ValueError(f"hypergradient mode must be one of {HYPERGRADIENT_MODES}, got {mode!r}")
    if not train_batches:
        raise ValueError("at least one look-ahead batch is needed")
    phi, gamma_live = split_parameters(model)
    if not gamma_live:
        raise ValueError("the model has no modulators (parameters named '...gamma')")
    gamma = {n: p.detach().clone().requires_grad_(True) for n, p in gamma_live.items()}
    unrolled = mode == "unrolled"
    # CPU flash attention has no double backward; the math kernel has.
    kernel = sdpa_kernel(SDPBackend.MATH) if unrolled else contextlib.nullcontext()
    names = list(phi)
    current = dict(phi)
    first_loss = None
    with kernel:
        for images, labels in train_batches:
            loss = loss_fn(functional_call(model, {**current, **gamma}, (images,)), labels)
            first_loss = loss.detach() if first_loss is None else first_loss
            grads = torch.autograd.grad(
                loss, [current[n] for n in names], create_graph=unrolled, allow_unused=True
            )
            current = {
                n: current[n] - lr * (torch.zeros_like(current[n]) if g is None
                                      else (g if unrolled else g.detach()))
                for n, g in zip(names, grads, strict=True)
            }
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
