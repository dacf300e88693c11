"""Folded scales and the fused q/k/v product compute what the textbook formulas say (float64).

The references below are the modules' formulas written out the slow way (each slice's update
``gamma * scale * B A x`` added to its own slice of the output); the modules fold the scale into
their small factors and run q, k and v as one low-rank product, which must not change a digit
that matters: outputs and every gradient, gamma's included, within 1e-6.
"""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from rs_metapeft.peft.adapter import Adapter
from rs_metapeft.peft.adaptformer import AdaptFormer
from rs_metapeft.peft.lora import LoRALinear

IN, OUT, RANK, ALPHA = 12, 18, 2, 3.0


def _randomised(module: nn.Module, gamma_param: str, per_channel: bool) -> nn.Module:
    torch.manual_seed(3)
    for m in module.modules():
        for name, p in m.named_parameters(recurse=False):
            if name == "gamma":  # a gamma away from its initial value, different per module
                p.data.uniform_(0.2, 1.5) if gamma_param != "log" else p.data.uniform_(-1, 1)
            else:
                p.data.normal_(0, 0.5)
    return module.double()


def _lora_linear(slices, present, gamma_param, per_channel):
    base = nn.Linear(IN, OUT * len(slices) // 3 if len(slices) == 3 else OUT)
    layer = LoRALinear(base, slices)
    for name in present:
        layer.add_lora(name, RANK, ALPHA, 0.0, 0, gamma_param, per_channel)
    return _randomised(layer, gamma_param, per_channel)


def _lora_reference(layer: LoRALinear, x: torch.Tensor) -> torch.Tensor:
    out = F.linear(x, layer.weight, layer.bias)
    parts = list(out.split(layer.slice_size, dim=-1))
    for i, name in enumerate(layer.slices):
        if name in layer.lora:
            m = layer.lora[name]
            update = x @ m.lora_A.T @ m.lora_B.T
            parts[i] = parts[i] + m.modulation() * m.scaling * update
    return torch.cat(parts, dim=-1)


def _grads(module: nn.Module, output: torch.Tensor, x: torch.Tensor) -> list[torch.Tensor]:
    weights = torch.linspace(-1, 1, output.numel(), dtype=output.dtype).view_as(output)
    params = [p for p in module.parameters() if p.requires_grad]
    return torch.autograd.grad((output * weights).sum(), [x, *params])


@pytest.mark.parametrize("gamma_param", ["identity", "softplus", "log"])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize(("slices", "present"), [
    (("q", "k", "v"), ("q", "k", "v")),
    (("q", "k", "v"), ("q", "v")),  # the paper's LoRA q,v: a zero block for k
    (("q", "k", "v"), ("k",)),
    (("fc1",), ("fc1",)),
])
def test_lora_linear_matches_the_per_slice_formula(slices, present, gamma_param, per_channel):
    layer = _lora_linear(slices, present, gamma_param, per_channel)
    x = torch.randn(2, 5, IN, dtype=torch.float64, requires_grad=True)
    fused, reference = layer(x), _lora_reference(layer, x)
    torch.testing.assert_close(fused, reference, rtol=0, atol=1e-6)
    for got, want in zip(_grads(layer, fused, x), _grads(layer, reference, x), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_lora_gradients_match_whatever_the_token_chunks(threads):
    """On the CPU the factors' gradients are summed over one chunk of tokens per thread; 10
    tokens on 3 threads leave one token over."""
    layer = _lora_linear(("q", "k", "v"), ("q", "v"), "softplus", False)
    x = torch.randn(2, 5, IN, dtype=torch.float64, requires_grad=True)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        fused = layer(x)
        got = _grads(layer, fused, x)
    finally:
        torch.set_num_threads(before)
    reference = _lora_reference(layer, x)
    for g, want in zip(got, _grads(layer, reference, x), strict=True):
        torch.testing.assert_close(g, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["lora", "adaptformer"])
def test_factor_gradients_come_in_the_factors_own_layout(kind):
    """A fused optimiser (the task's AdamW) reads a gradient as if laid out as its parameter."""
    if kind == "lora":
        module = _lora_linear(("q", "k", "v"), ("q", "v"), "identity", False)
    else:
        module = _randomised(AdaptFormer(IN, 4, ALPHA, 0.0, 0), "identity", False)
    x = torch.randn(2, 5, IN, dtype=torch.float64, requires_grad=True)
    params = [p for p in module.parameters() if p.requires_grad]
    for p, g in zip(params, torch.autograd.grad(module(x).square().sum(), params), strict=True):
        assert g.stride() == p.stride(), p.shape


def test_merged_weight_equals_the_layer_it_replaces():
    layer = _lora_linear(("q", "k", "v"), ("q", "v"), "log", False).eval()
    x = torch.randn(4, IN, dtype=torch.float64)
    torch.testing.assert_close(layer.to_linear()(x), layer(x), rtol=0, atol=1e-5)


def test_each_lora_keeps_its_own_dropout_mask_in_training():
    layer = LoRALinear(nn.Linear(IN, 3 * OUT), ("q", "k", "v"))
    for name in ("q", "k", "v"):
        layer.add_lora(name, RANK, ALPHA, 0.5, 0)
    _randomised(layer, "identity", False).train()
    x = torch.randn(3, IN, dtype=torch.float64)
    torch.manual_seed(7)
    fused = layer(x)
    torch.manual_seed(7)  # the same masks, drawn slice by slice as separate modules draw them
    reference = F.linear(x, layer.weight, layer.bias).split(OUT, dim=-1)
    reference = torch.cat([part + layer.lora[name](x)
                           for part, name in zip(reference, ("q", "k", "v"), strict=True)], -1)
    torch.testing.assert_close(fused, reference, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", [Adapter, AdaptFormer])
@pytest.mark.parametrize("gamma_param", ["identity", "softplus", "log"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_bottleneck_modules_match_the_scaled_formula(kind, gamma_param, per_channel):
    module = _randomised(kind(IN, 4, ALPHA, 0.0, 0, gamma_param, per_channel), gamma_param,
                         per_channel)
    x = torch.randn(2, 5, IN, dtype=torch.float64, requires_grad=True)
    h = module.norm(x) if kind is AdaptFormer else x
    reference = module.modulation() * ALPHA * module.up(torch.relu(module.down(h)))
    folded = module(x)
    torch.testing.assert_close(folded, reference, rtol=0, atol=1e-6)
    for got, want in zip(_grads(module, folded, x), _grads(module, reference, x), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_merged_product_supports_second_order_gradients():
    """The meta step differentiates inner gradients again: those must match the long way's."""
    layer = _lora_linear(("q", "k", "v"), ("q", "v"), "log", False)
    x = torch.randn(2, 5, IN, dtype=torch.float64, requires_grad=True)
    inner = [layer.lora[n].lora_A for n in ("q", "v")] + [layer.lora[n].lora_B for n in ("q", "v")]
    gammas = [layer.lora[n].gamma.requires_grad_(True) for n in ("q", "v")]  # as the meta step

    def second_order(output):
        grads = torch.autograd.grad((output ** 2).sum(), [x, *inner], create_graph=True)
        probe = sum((g * torch.linspace(-1, 1, g.numel(), dtype=g.dtype).view_as(g)).sum()
                    for g in grads)
        return torch.autograd.grad(probe, [x, *inner, *gammas, layer.weight])

    for got, want in zip(second_order(layer(x)), second_order(_lora_reference(layer, x)),
                         strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("needs", ["all", "frozen_base", "no_input"])
def test_merged_product_gradients_follow_what_requires_grad(needs):
    """Base weight and bias trainable (full fine-tuning with LoRA) or frozen; input leaf or not."""
    layer = _lora_linear(("fc1",), ("fc1",), "identity", True)
    layer.weight.requires_grad_(needs == "all")
    layer.bias.requires_grad_(needs == "all")
    x = torch.randn(7, IN, dtype=torch.float64, requires_grad=needs != "no_input")
    _assert_same_gradients(layer, _lora_reference, x)


def _assert_same_gradients(module: nn.Module, reference, x: torch.Tensor) -> None:
    """Gradients to whatever requires grad (input and parameters) equal the reference's."""
    wanted = [t for t in (x, *module.parameters()) if t.requires_grad]
    out = module(x)
    w = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    got = torch.autograd.grad((out * w).sum(), wanted)
    want = torch.autograd.grad((reference(module, x) * w).sum(), wanted)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_merged_product_under_bf16_autocast_keeps_input_dtypes():
    layer = _lora_linear(("q", "k", "v"), ("q", "k", "v"), "log", False).float()
    layer.lora["q"].gamma.requires_grad_(True)
    x = torch.randn(3, 4, IN, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
    grads = torch.autograd.grad(out.float().sum(), [x, layer.lora["q"].lora_A,
                                                    layer.lora["q"].gamma])
    assert [g.dtype for g in grads] == [torch.float32] * 3
    with torch.no_grad():
        reference = _lora_reference(layer, x)
    torch.testing.assert_close(out.float(), reference, rtol=0.05, atol=0.05)


def _adaptformer(gamma_param="log", per_channel=False) -> AdaptFormer:
    return _randomised(AdaptFormer(IN, 4, ALPHA, 0.0, 0, gamma_param, per_channel), gamma_param,
                       per_channel)


def _adaptformer_reference(module: AdaptFormer, x: torch.Tensor) -> torch.Tensor:
    return module.modulation() * ALPHA * module.up(torch.relu(module.down(module.norm(x))))


@pytest.mark.parametrize("per_channel", [False, True])
def test_adaptformer_supports_second_order_gradients(per_channel):
    """Second-order gradients through the recomputing branch match the long way's (gamma too)."""
    module = _adaptformer(per_channel=per_channel)
    x = torch.randn(2, 5, IN, dtype=torch.float64, requires_grad=True)
    inner = [module.down.weight, module.down.bias, module.up.weight, module.up.bias,
             module.norm.weight, module.norm.bias]
    module.gamma.requires_grad_(True)

    def second_order(output):
        grads = torch.autograd.grad((output ** 2).sum(), [x, *inner], create_graph=True)
        probe = sum((g * torch.linspace(-1, 1, g.numel(), dtype=g.dtype).view_as(g)).sum()
                    for g in grads)
        return torch.autograd.grad(probe, [x, *inner, module.gamma])

    for got, want in zip(second_order(module(x)),
                         second_order(_adaptformer_reference(module, x)), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("frozen", ["nothing", "norm_and_down", "input"])
def test_adaptformer_gradients_follow_what_requires_grad(frozen):
    module = _adaptformer("identity", True)
    if frozen == "norm_and_down":
        for p in (*module.norm.parameters(), *module.down.parameters()):
            p.requires_grad_(False)
    x = torch.randn(6, IN, dtype=torch.float64, requires_grad=frozen != "input")
    _assert_same_gradients(module, _adaptformer_reference, x)


def test_adaptformer_keeps_no_activation_of_its_own():
    """Only the block input (which the block's norm2 keeps anyway) and weights are saved."""
    module = _adaptformer()
    x = torch.randn(4, 9, IN, dtype=torch.float64, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        module(x)
    activations = [t for t in saved if t.shape[:-1] == x.shape[:-1]]  # one row per token
    assert len(activations) == 1 and activations[0].data_ptr() == x.data_ptr()


def test_adaptformer_under_bf16_autocast_keeps_input_dtypes():
    module = _adaptformer().float()
    module.gamma.requires_grad_(True)
    x = torch.randn(3, 4, IN, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = module(x)
    grads = torch.autograd.grad(out.float().sum(), [x, module.down.weight, module.norm.weight,
                                                    module.gamma])
    assert [g.dtype for g in grads] == [torch.float32] * 4
    with torch.no_grad():
        reference = _adaptformer_reference(module, x)
    torch.testing.assert_close(out.float(), reference, rtol=0.05, atol=0.05)


def test_adaptformer_with_dropout_takes_the_long_way_in_training():
    module = AdaptFormer(IN, 4, ALPHA, 0.5, 0).double()
    nn.init.normal_(module.up.weight)
    x = torch.randn(50, IN, dtype=torch.float64)
    torch.manual_seed(0)
    first = module(x)
    torch.manual_seed(0)
    hidden = module.dropout(torch.relu(module.down(module.norm(x))))  # the same mask
    torch.testing.assert_close(first, ALPHA * module.up(hidden), rtol=0, atol=1e-12)
    assert not torch.equal(first, module.eval()(x))  # a dropout mask was applied in training
