import pytest
import torch
from torch.func import functional_call
from torch.nn import functional as F

from rs_metapeft.meta import lookahead_hypergradient, split_parameters
from rs_metapeft.models import create_backbone
from rs_metapeft.peft import PeftConfig, inject_peft


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
