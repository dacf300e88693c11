"""Our LoRA on a timm ViT against Hugging Face peft's LoRA with the same A, B and scaling."""

import pytest
import torch

from rs_metapeft.peft import LORA_POSITIONS, PeftConfig, inject_peft

from .factory import tiny_vit

peft = pytest.importorskip("peft")

RANK, ALPHA = 2, 3.0


def _hf_lora(block_index, name, hf_model):
    return hf_model.blocks[block_index].attn.get_submodule(name) if name in ("qkv", "proj") \
        else hf_model.blocks[block_index].mlp.get_submodule(name)


def test_our_lora_equals_hf_peft_lora():
    ours = tiny_vit()
    modules = inject_peft(ours, PeftConfig(positions=list(LORA_POSITIONS), rank=RANK, alpha=ALPHA))
    torch.manual_seed(1)
    for m in modules:
        m.lora_A.data.normal_(0, 0.1)
        m.lora_B.data.normal_(0, 0.1)
    # A gamma != 1 is folded into HF's B, since HF peft has no modulator.
    modules[0].set_modulation(0.5)

    # HF peft puts one LoRA on the fused qkv; three rank-r slice LoRAs are one rank-3r LoRA with
    # A = [A_q; A_k; A_v] and block-diagonal B, scaled alpha/r = (3 alpha)/(3 r).
    config = peft.LoraConfig(
        r=RANK, lora_alpha=ALPHA, lora_dropout=0.0,
        target_modules=r"blocks\.\d+\.(attn\.(qkv|proj)|mlp\.(fc1|fc2))",
        rank_pattern={"qkv": 3 * RANK}, alpha_pattern={"qkv": 3 * ALPHA},
    )
    hf = peft.inject_adapter_in_model(config, tiny_vit())
    by_key = {(m.layer, m.position): m for m in modules}
    for layer in range(len(ours.blocks)):
        for name, slices in (("qkv", ("q", "k", "v")), ("proj", ("o",)), ("fc1", ("fc1",)),
                             ("fc2", ("fc2",))):
            target = _hf_lora(layer, name, hf)
            parts = [by_key[(layer, s)] for s in slices]
            A = torch.cat([p.lora_A.data for p in parts])
            B = torch.block_diag(*[p.modulation().detach() * p.lora_B.data for p in parts])
            target.lora_A["default"].weight.data.copy_(A)
            target.lora_B["default"].weight.data.copy_(B)
            assert target.scaling["default"] == pytest.approx(ALPHA / RANK)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected, got = hf(x), ours(x)
    assert not torch.allclose(got, tiny_vit()(x), atol=1e-3)  # the LoRAs do something
    assert torch.allclose(got, expected, atol=1e-5)
