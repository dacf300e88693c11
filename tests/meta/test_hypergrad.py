import pytest
import torch
from torch.func import functional_call
from torch.nn import functional as F

from rs_metapeft.meta import lookahead_hypergradient, step_hypergradient
from rs_metapeft.models import create_backbone
from rs_metapeft.peft import PeftConfig, inject_peft, split_parameters


class Tiny(torch.nn.Module):
    """A one-block ViT with LoRA at q, v, fc2 and an AdaptFormer, plus a head, in float64."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.vit = create_backbone("vit_tiny_patch16_224", None, 16, 8, depth=1, embed_dim=16,
                                   num_heads=2)
        modules = inject_peft(self.vit, PeftConfig(positions=["q", "v", "fc2", "adaptformer"],
                                                    rank=2, bottleneck=4))
        for m in modules:  # non-zero B / Up so that every gamma has a gradient
            for name, p in m.named_parameters():
                if not name.endswith("gamma"):
                    p.data.normal_(0, 0.3)
            m.gamma.data.uniform_(0.5, 1.5)
        self.head = torch.nn.Linear(16, 3)
        self.double()

    def forward(self, x):
        return self.head(self.vit(x))


def _batches():
    g = torch.Generator().manual_seed(0)
    make = lambda n: (torch.randn(n, 3, 16, 16, generator=g, dtype=torch.float64),  # noqa: E731
                      torch.randint(0, 3, (n,), generator=g))
    return make(6), make(5), make(6)


def _meta_loss(model, gamma, train_batches, val_batch, lr):
    phi, _ = split_parameters(model)
    current = dict(phi)
    for x, y in train_batches:
        loss = F.cross_entropy(functional_call(model, {**current, **gamma}, (x,)), y)
        grads = torch.autograd.grad(loss, list(current.values()), allow_unused=True)
        current = {n: p - lr * (torch.zeros_like(p) if g is None else g)
                   for (n, p), g in zip(current.items(), grads, strict=True)}
    x, y = val_batch
    return float(F.cross_entropy(functional_call(model, {**current, **gamma}, (x,)), y))


@pytest.mark.parametrize("steps", [1, 2])
def test_unrolled_hypergradient_matches_finite_differences(steps):
    model = Tiny()
    tr1, val, tr2 = _batches()
    train_batches = [tr1, tr2][:steps]
    lr = 0.5
    result = lookahead_hypergradient(model, F.cross_entropy, train_batches, val, lr, "unrolled")
    _, gamma = split_parameters(model)
    eps = 1e-6
    for name in gamma:
        plus = {n: g.detach().clone() for n, g in gamma.items()}
        minus = {n: g.detach().clone() for n, g in gamma.items()}
        plus[name] += eps
        minus[name] -= eps
        fd = (_meta_loss(model, plus, train_batches, val, lr)
              - _meta_loss(model, minus, train_batches, val, lr)) / (2 * eps)
        assert result.grads[name].item() == pytest.approx(fd, rel=1e-4, abs=1e-8), name


def test_first_order_ignores_the_path_through_the_lookahead():
    model = Tiny()
    tr, val, _ = _batches()
    first = lookahead_hypergradient(model, F.cross_entropy, [tr], val, 0.5, "first_order")
    full = lookahead_hypergradient(model, F.cross_entropy, [tr], val, 0.5, "unrolled")
    assert first.meta_loss == pytest.approx(full.meta_loss)
    diffs = [abs(first.grads[n] - full.grads[n]).item() for n in first.grads]
    assert max(diffs) > 1e-6  # the implicit term is not negligible here
    # With a zero step the look-ahead is the identity and both modes agree.
    a = lookahead_hypergradient(model, F.cross_entropy, [tr], val, 0.0, "first_order")
    b = lookahead_hypergradient(model, F.cross_entropy, [tr], val, 0.0, "unrolled")
    for n in a.grads:
        assert torch.allclose(a.grads[n], b.grads[n])


def test_model_is_left_untouched():
    model = Tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tr, val, _ = _batches()
    lookahead_hypergradient(model, F.cross_entropy, [tr], val, 0.5, "unrolled")
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())


def test_bad_mode_is_refused():
    model = Tiny()
    tr, val, _ = _batches()
    with pytest.raises(ValueError, match="hypergradient mode"):
        lookahead_hypergradient(model, F.cross_entropy, [tr], val, 0.1, "second_order")


def _train_grads(model, batch):
    phi, _ = split_parameters(model)
    x, y = batch
    loss = F.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, list(phi.values()), allow_unused=True)
    return dict(zip(phi, grads, strict=True)), float(loss)


def _finite_differences(model, train_batches, val, lr, eps=1e-6):
    _, gamma = split_parameters(model)
    out = {}
    for name in gamma:
        plus = {n: g.detach().clone() for n, g in gamma.items()}
        minus = {n: g.detach().clone() for n, g in gamma.items()}
        plus[name] += eps
        minus[name] -= eps
        out[name] = (_meta_loss(model, plus, train_batches, val, lr)
                     - _meta_loss(model, minus, train_batches, val, lr)) / (2 * eps)
    return out


def test_unrolled_k_matches_finite_differences_over_three_steps():
    model = Tiny()
    tr1, val, tr2 = _batches()
    train_batches = [tr1, tr2, tr1]
    result = lookahead_hypergradient(model, F.cross_entropy, train_batches, val, 0.3, "unrolled_k")
    fd = _finite_differences(model, train_batches, val, 0.3)
    for name, value in fd.items():
        assert result.grads[name].item() == pytest.approx(value, rel=1e-4, abs=1e-8), name


def test_train_step_lookahead_matches_finite_differences_and_the_functional_path():
    model = Tiny()
    tr, val, _ = _batches()
    grads, loss = _train_grads(model, tr)
    for p in model.parameters():  # the trainer's p.grad must survive the meta step untouched
        p.grad = torch.full_like(p, 7.0)
    result = step_hypergradient(model, F.cross_entropy, tr, grads, val, 0.5, "unrolled", loss)
    assert all(torch.all(p.grad == 7.0) for p in model.parameters())
    assert result.train_loss == pytest.approx(loss)
    fd = _finite_differences(model, [tr], val, 0.5)
    functional = lookahead_hypergradient(model, F.cross_entropy, [tr], val, 0.5, "unrolled")
    for name, value in fd.items():
        assert result.grads[name].item() == pytest.approx(value, rel=1e-4, abs=1e-8), name
        assert torch.allclose(result.grads[name], functional.grads[name], rtol=1e-8, atol=1e-12)
    first = step_hypergradient(model, F.cross_entropy, tr, grads, val, 0.5, "first_order")
    first_functional = lookahead_hypergradient(model, F.cross_entropy, [tr], val, 0.5,
                                               "first_order")
    for name in fd:
        assert torch.allclose(first.grads[name], first_functional.grads[name])
        assert not torch.allclose(first.grads[name], result.grads[name])
    assert first.meta_loss == pytest.approx(result.meta_loss)


def test_train_step_lookahead_replays_the_training_dropout_masks():
    model = Tiny()
    model.vit.blocks[0].attn.qkv.lora["q"].dropout = torch.nn.Dropout(0.5)
    tr, val, _ = _batches()
    rng = torch.get_rng_state()
    grads, loss = _train_grads(model, tr)
    replayed = step_hypergradient(model, F.cross_entropy, tr, grads, val, 0.5, "unrolled", loss,
                                  rng)
    assert replayed.replayed_loss == loss  # the same masks as the real training forward
    fresh = step_hypergradient(model, F.cross_entropy, tr, grads, val, 0.5, "unrolled", loss)
    assert fresh.replayed_loss != loss  # without the state, other masks are drawn


def test_step_hypergradient_runs_under_bf16_autocast():
    model = Tiny().float()
    tr, val, _ = _batches()
    tr = (tr[0].float(), tr[1])
    val = (val[0].float(), val[1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        grads, loss = _train_grads(model, tr)
        result = step_hypergradient(model, F.cross_entropy, tr, grads, val, 0.5, "unrolled", loss)
    reference = step_hypergradient(model, F.cross_entropy, tr, _train_grads(model, tr)[0], val,
                                   0.5, "unrolled")
    assert result.finite
    for name, g in result.grads.items():
        assert g.dtype == torch.float32
        assert torch.allclose(g, reference.grads[name], rtol=0.1, atol=0.05), name


def test_modes_and_refusals():
    from rs_metapeft.meta import HYPERGRADIENT_MODES, MetaConfig

    assert HYPERGRADIENT_MODES == ("first_order", "unrolled", "unrolled_k")
    model = Tiny()
    tr, val, _ = _batches()
    grads, _ = _train_grads(model, tr)
    with pytest.raises(ValueError, match="unrolled_k"):
        step_hypergradient(model, F.cross_entropy, tr, grads, val, 0.1, "unrolled_k")
    with pytest.raises(ValueError, match="lacks gradients"):
        step_hypergradient(model, F.cross_entropy, tr, {}, val, 0.1, "unrolled")
    with pytest.raises(ValueError, match="unrolled_k"):
        MetaConfig(hypergradient="unrolled", lookahead_steps=2)
    with pytest.raises(ValueError, match="lookahead"):
        MetaConfig(hypergradient="first_order", lookahead_steps=2)
    assert not MetaConfig(hypergradient="unrolled_k", lookahead_steps=3).uses_train_step
    schedule = MetaConfig(every_n_steps=4, warmup_steps=6)
    assert [s for s in range(20) if schedule.is_outer_step(s)] == [6, 10, 14, 18]


def test_sub_batch_hessian_vector_products_average_to_the_exact_hypergradient():
    model = Tiny()
    tr, val, _ = _batches()
    grads, loss = _train_grads(model, tr)
    exact = step_hypergradient(model, F.cross_entropy, tr, grads, val, 0.5, "unrolled", loss)
    whole = step_hypergradient(model, F.cross_entropy, tr, grads, val, 0.5, "unrolled", loss,
                               hvp_batch_size=64)
    # The mean loss over 6 images is the mean of its two halves' losses, so the HVP on each half
    # (the look-ahead phi' still comes from the whole batch's gradient) averages to the exact one.
    x, y = tr
    swapped = (torch.cat([x[3:], x[:3]]), torch.cat([y[3:], y[:3]]))
    first = step_hypergradient(model, F.cross_entropy, tr, grads, val, 0.5, "unrolled",
                               hvp_batch_size=3)
    second = step_hypergradient(model, F.cross_entropy, swapped, grads, val, 0.5, "unrolled",
                                hvp_batch_size=3)
    for name, g in exact.grads.items():
        assert torch.equal(whole.grads[name], g)
        assert torch.allclose((first.grads[name] + second.grads[name]) / 2, g, rtol=1e-9,
                              atol=1e-12), name
        assert not torch.allclose(first.grads[name], g)
    with pytest.raises(ValueError, match="hvp_batch_size"):
        step_hypergradient(model, F.cross_entropy, tr, grads, val, 0.5, "unrolled",
                           hvp_batch_size=0)


def test_meta_config_refuses_a_non_positive_hvp_batch():
    from rs_metapeft.meta import MetaConfig

    assert MetaConfig(hvp_batch_size=16).hvp_batch_size == 16
    with pytest.raises(ValueError, match="model.meta.hvp_batch_size"):
        MetaConfig(hvp_batch_size=0)


def test_the_outer_step_plan_is_decided_in_one_place():
    from rs_metapeft.meta import MetaConfig, OuterStepPlan, outer_step_plan

    assert outer_step_plan("first_order") == OuterStepPlan(train_step=True, unrolled=False)
    assert outer_step_plan("unrolled") == OuterStepPlan(train_step=True, unrolled=True)
    assert outer_step_plan("unrolled_k") == OuterStepPlan(train_step=False, unrolled=True)
    assert outer_step_plan("first_order", "meta_train") == OuterStepPlan(False, False)
    assert MetaConfig(hypergradient="unrolled_k", lookahead_steps=2).plan == OuterStepPlan(
        False, True)
    with pytest.raises(ValueError, match="first_order, unrolled, unrolled_k"):
        outer_step_plan("second_order")
