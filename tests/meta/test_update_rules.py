"""The look-ahead models the step the trainer really takes, checked against the real optimisers."""

import copy

import pytest
import torch
from torch.nn import functional as F

from rs_metapeft.meta import (
    LookaheadRule,
    lookahead_hypergradient,
    rule_from_optimizer,
    step_hypergradient,
)
from rs_metapeft.peft import split_parameters
from rs_metapeft.tasks.metapeft import OptimizerConfig

from .test_hypergrad import Tiny, _batches, _train_grads

OPTIMIZERS = {
    "adamw": lambda params: torch.optim.AdamW(params, lr=0.01, weight_decay=0.05),
    # the task's own inner optimiser (fused AdamW on the CPU)
    "adamw, as the task builds it": lambda params: OptimizerConfig(
        lr=0.01, weight_decay=0.05).build(params),
    "sgd_momentum": lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9,
                                                   weight_decay=1e-3),
    "sgd_nesterov": lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True,
                                                   dampening=0.0),
}


def _warm(kind: str, steps: int = 2):
    """A float64 toy model and its real optimiser after ``steps`` real steps (non-empty state)."""
    model = Tiny()
    opt = OPTIMIZERS[kind](list(split_parameters(model)[0].values()))
    tr1, _, tr2 = _batches()
    for i in range(steps):
        x, y = (tr1, tr2)[i % 2]
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return model, opt


def _true_meta_loss(model, opt, gamma: dict, train_batches, val) -> float:
    """Meta loss after REAL optimiser steps with gamma set to ``gamma`` (what FD differentiates)."""
    twin = copy.deepcopy(model)
    gammas = split_parameters(twin)[1]
    with torch.no_grad():
        for name, value in gamma.items():
            gammas[name].copy_(value)
    phi = list(split_parameters(twin)[0].values())
    real = type(opt)(phi)  # load_state_dict below restores every group setting and the state
    real.load_state_dict(copy.deepcopy(opt.state_dict()))
    for x, y in train_batches:
        real.zero_grad()
        F.cross_entropy(twin(x), y).backward()
        real.step()
    x, y = val
    with torch.no_grad():
        return float(F.cross_entropy(twin(x), y))


def _finite_differences(model, opt, train_batches, val, eps=1e-6) -> torch.Tensor:
    gamma = {n: g.detach().clone() for n, g in split_parameters(model)[1].items()}
    out = []
    for name, value in gamma.items():
        for i in range(value.numel()):
            plus = {n: g.clone() for n, g in gamma.items()}
            minus = {n: g.clone() for n, g in gamma.items()}
            plus[name].view(-1)[i] += eps
            minus[name].view(-1)[i] -= eps
            out.append((_true_meta_loss(model, opt, plus, train_batches, val)
                        - _true_meta_loss(model, opt, minus, train_batches, val)) / (2 * eps))
    return torch.tensor(out, dtype=torch.float64)


def _flat(grads: dict) -> torch.Tensor:
    return torch.cat([g.reshape(-1) for g in grads.values()])


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_rule_reproduces_the_real_optimiser_step(kind):
    model, opt = _warm(kind)
    tr, _, _ = _batches()
    phi = split_parameters(model)[0]
    grads, _ = _train_grads(model, tr)
    rule = rule_from_optimizer(opt, phi)
    predicted, _ = rule.step({n: p.detach() for n, p in phi.items()}, grads)
    for name, p in phi.items():
        p.grad = grads[name]
    opt.step()
    for name, p in phi.items():
        assert torch.allclose(predicted[name], p.detach(), rtol=1e-12, atol=1e-15), name


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_one_step_unrolled_hypergradient_matches_finite_differences_of_the_real_step(kind):
    model, opt = _warm(kind)
    tr, val, _ = _batches()
    grads, loss = _train_grads(model, tr)
    rule = rule_from_optimizer(opt, split_parameters(model)[0])
    result = step_hypergradient(model, F.cross_entropy, tr, grads, val, rule, "unrolled", loss)
    functional = lookahead_hypergradient(model, F.cross_entropy, [tr], val, rule, "unrolled")
    fd = _finite_differences(model, opt, [tr], val)
    assert _relative_error(_flat(result.grads), fd) < 1e-6
    assert _relative_error(_flat(functional.grads), fd) < 1e-6


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_two_step_unrolled_hypergradient_matches_finite_differences_of_the_real_steps(kind):
    model, opt = _warm(kind)
    tr1, val, tr2 = _batches()
    rule = rule_from_optimizer(opt, split_parameters(model)[0])
    result = lookahead_hypergradient(model, F.cross_entropy, [tr1, tr2], val, rule, "unrolled_k")
    fd = _finite_differences(model, opt, [tr1, tr2], val)
    assert _relative_error(_flat(result.grads), fd) < 1e-6


def test_an_sgd_model_of_an_adamw_step_is_measurably_wrong():
    """The approximation earlier releases made, named: this is what ``lookahead_rule: sgd`` does."""
    model, opt = _warm("adamw")
    tr, val, _ = _batches()
    grads, loss = _train_grads(model, tr)
    phi = split_parameters(model)[0]
    exact = step_hypergradient(model, F.cross_entropy, tr, grads, val,
                               rule_from_optimizer(opt, phi), "unrolled", loss)
    approx = step_hypergradient(model, F.cross_entropy, tr, grads, val,
                                rule_from_optimizer(opt, phi, "sgd"), "unrolled", loss)
    assert _relative_error(_flat(approx.grads), _flat(exact.grads)) > 1e-3
    # ... and its look-ahead is an order of magnitude shorter than the real step.
    real, _ = rule_from_optimizer(opt, phi).step(phi, grads)
    plain, _ = rule_from_optimizer(opt, phi, "sgd").step(phi, grads)
    move = lambda new: sum(float((new[n] - phi[n]).norm()) for n in phi)  # noqa: E731
    assert move(real) > 3 * move(plain)


def test_the_rule_leaves_the_optimiser_state_alone_and_refuses_what_it_does_not_model():
    model, opt = _warm("adamw")
    phi = split_parameters(model)[0]
    before = copy.deepcopy(opt.state_dict())
    rule = rule_from_optimizer(opt, phi)
    rule.step(phi, {n: torch.ones_like(p) for n, p in phi.items()})
    after = opt.state_dict()
    for key, state in before["state"].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(after["state"][key][name]))
    with pytest.raises(ValueError, match="lookahead_rule"):
        rule_from_optimizer(opt, phi, "newton")
    with pytest.raises(ValueError, match="amsgrad"):
        rule_from_optimizer(torch.optim.AdamW(list(phi.values()), amsgrad=True), phi)
    with pytest.raises(ValueError, match="RMSprop"):
        rule_from_optimizer(torch.optim.RMSprop(list(phi.values())), phi)
    assert isinstance(rule, LookaheadRule) and rule.kind == "adamw"
