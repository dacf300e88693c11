"""Every PEFT method and position set through the same checks (as HF peft's ``TEST_CASES``).

One table of cases, each a ``PeftConfig`` and what injecting it into a two-block ViT must give;
every check runs on every case: the modules injected, the forward pass (a no-op at start), the
gamma map (and gamma 0 giving back the frozen backbone), LoRA merging computing the same function,
and which parameters train.
"""

from dataclasses import dataclass
from functools import cache

import pytest
import torch

from rs_metapeft.peft import (
    DEFAULT_POSITIONS,
    LORA_POSITIONS,
    POSITIONS,
    PeftConfig,
    gamma_map,
    gamma_parameters,
    inject_peft,
    peft_modules,
)
from rs_metapeft.peft.lora import LoRALinear
from rs_metapeft.peft.merge import merge_lora

from .factory import DEPTH, randomise, tiny_vit

_ADDED = (".lora.", ".adaptformer.", ".adapter.")


@dataclass(frozen=True)
class Case:
    """A PEFT configuration and what it must give on the test ViT.

    Attributes:
        id: the test id.
        config: ``PeftConfig`` arguments.
        layers: the blocks that get modules.
        trains: which backbone tensors train: ``peft`` (the inserted modules, gamma aside),
            ``none``, ``all``, ``bias`` or ``prompts``.
    """

    id: str
    config: dict
    layers: tuple[int, ...] = tuple(range(DEPTH))
    trains: str = "peft"

    @property
    def positions(self) -> list[str]:
        """The positions that get a modulated module."""
        return list(self.config.get("positions", [])) if self.trains == "peft" else []

    @property
    def lora(self) -> int:
        """How many LoRA modules merging folds into the base weights."""
        return len(self.layers) * len([p for p in self.positions if p in LORA_POSITIONS])


TEST_CASES = [
    Case("lora_q", {"positions": ["q"]}),
    Case("lora_every_linear", {"positions": list(LORA_POSITIONS)}),
    Case("adaptformer", {"positions": ["adaptformer"]}),
    Case("adapter", {"positions": ["adapter"]}),
    Case("metapeft_default", {"positions": list(DEFAULT_POSITIONS)}),  # LoRA + AdaptFormer
    Case("every_position", {"positions": list(POSITIONS)}),
    Case("last_layer_q_v", {"positions": ["q", "v"], "layers": [-1]}, layers=(DEPTH - 1,)),
    Case("channel_gamma", {"positions": ["q", "fc1", "adaptformer", "adapter"],
                           "gamma_shape": "channel", "gamma_param": "identity"}),
    Case("softplus_gamma", {"positions": ["v", "fc2"], "gamma_param": "softplus"}),
    Case("no_positions", {"positions": []}, trains="none"),
    Case("linear_probe", {"method": "linear_probe"}, trains="none"),
    Case("full", {"method": "full"}, trains="all"),
    Case("bitfit", {"method": "bitfit"}, trains="bias"),
    Case("vpt_deep", {"method": "vpt_deep", "prompts": 3}, trains="prompts"),
]


@pytest.fixture(params=TEST_CASES, ids=lambda case: case.id)
def case(request) -> Case:
    return request.param


def _inject(case: Case):
    vit = tiny_vit()
    return vit, inject_peft(vit, PeftConfig(**case.config))


def _x():
    torch.manual_seed(2)
    return torch.randn(2, 3, 32, 32)


@cache
def _frozen() -> tuple[frozenset[str], torch.Tensor]:
    """State-dict keys and output of the backbone without PEFT (built once)."""
    vit = tiny_vit()
    with torch.no_grad():
        return frozenset(vit.state_dict()), vit(_x())


def _flat(gmap) -> dict[tuple[int, str], float]:
    return {(layer, p): v for layer, row in gmap.items() for p, v in row.items()}


def test_injects_one_modulated_module_per_layer_and_position(case):
    vit, modules = _inject(case)
    expected = {(layer, p) for layer in case.layers for p in case.positions}
    assert len(modules) == len(expected)
    assert {(m.layer, m.position) for m in peft_modules(vit)} == expected
    assert len(gamma_parameters(vit)) == len(expected)
    assert _frozen()[0] <= set(vit.state_dict())  # the backbone's own keys stay


def test_forward_keeps_the_shape_and_starts_as_the_frozen_backbone(case):
    frozen = _frozen()[1]
    vit, _ = _inject(case)
    out = vit(_x())
    assert out.shape == frozen.shape
    if case.trains != "prompts":  # modules start as no-ops; prompts change the tokens at once
        assert torch.allclose(out, frozen, atol=1e-6)


def test_gamma_map_reports_each_modulator_and_gamma_0_switches_modules_off(case):
    frozen = _frozen()[1]
    vit, modules = _inject(case)
    start = {(layer, p): 1.0 for layer in case.layers for p in case.positions}
    assert _flat(gamma_map(vit)) == pytest.approx(start)
    randomise(modules)
    values = {(m.layer, m.position): 0.25 * (i + 1) for i, m in enumerate(modules)}
    for m in modules:
        m.set_modulation(values[(m.layer, m.position)])
    assert _flat(gamma_map(vit)) == pytest.approx(values)
    if not modules:
        return
    assert not torch.allclose(vit(_x()), frozen, atol=1e-4)
    for m in modules:
        m.set_modulation(0.0)
    assert torch.allclose(vit(_x()), frozen, atol=1e-6)


def test_merging_lora_computes_the_same_function(case):
    if not case.lora:
        pytest.skip(f"{case.id} has no LoRA to merge")
    vit, modules = _inject(case)
    randomise(modules)
    for i, m in enumerate(modules):
        m.set_modulation(0.5 + 0.1 * i)
    with torch.no_grad():
        before = vit(_x())
        assert merge_lora(vit) == case.lora
        assert not any(isinstance(m, LoRALinear) for m in vit.modules())
        assert torch.allclose(vit(_x()), before, atol=1e-5)


def test_trains_what_the_method_says(case):
    vit, _ = _inject(case)
    names = {n for n, _ in vit.named_parameters()}
    expected = {
        "peft": {n for n in names if any(a in n for a in _ADDED) and not n.endswith("gamma")},
        "none": set(),
        "all": names,
        "bias": {n for n in names if n.endswith("bias")},
        "prompts": {f"blocks.{i}.vpt.prompts" for i in range(DEPTH)},
    }[case.trains]
    assert {n for n, p in vit.named_parameters() if p.requires_grad} == expected
    assert not any(p.requires_grad for p in gamma_parameters(vit).values())  # meta step only
