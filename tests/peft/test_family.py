"""Per-method behaviour the shared table (test_cases.py) cannot state: exact forward maths."""

import pytest
import torch

from rs_metapeft.peft import PeftConfig, inject_peft

from .factory import D, randomise, tiny_vit


def test_sequential_adapter_acts_on_the_mlp_output():
    vit = tiny_vit()
    block = vit.blocks[0]
    x = torch.randn(2, 17, D)
    (adapter,) = inject_peft(vit, PeftConfig(positions=["adapter"], layers=[0]))
    assert torch.allclose(block(x), tiny_vit().blocks[0](x))  # Up starts at zero: a no-op
    randomise([adapter])
    y = x + block.attn(block.norm1(x))
    h = block.mlp(block.norm2(y))
    expected = y + h + adapter.alpha * adapter.up(torch.relu(adapter.down(h)))
    assert torch.allclose(block(x), expected, atol=1e-5)
    adapter.set_modulation(0.0)
    assert torch.allclose(block(x), tiny_vit().blocks[0](x), atol=1e-6)


@pytest.mark.parametrize("position", ["q", "fc1", "adaptformer", "adapter"])
def test_per_channel_gamma_scales_each_output_channel(position):
    vit = tiny_vit()
    (module,) = inject_peft(vit, PeftConfig(positions=[position], layers=[0],
                                            gamma_shape="channel", gamma_param="identity"))
    assert module.gamma.dim() == 1 and module.gamma.numel() > 1
    randomise([module])
    x = torch.randn(3, module.lora_A.shape[1] if hasattr(module, "lora_A") else D)
    full = module(x)
    with torch.no_grad():
        module.gamma.zero_()
        module.gamma[0] = 2.0
    out = module(x)
    assert torch.allclose(out[:, 0], 2 * full[:, 0], atol=1e-6)
    assert torch.all(out[:, 1:] == 0)


def test_vpt_deep_inserts_and_drops_prompts_every_layer():
    x = torch.randn(2, 3, 32, 32)
    frozen = tiny_vit()
    vit = tiny_vit()
    inject_peft(vit, PeftConfig(method="vpt_deep", prompts=3))
    tokens = vit.forward_features(x)
    assert tokens.shape == frozen.forward_features(x).shape  # prompts are dropped after each block
    assert not torch.allclose(vit(x), frozen(x), atol=1e-4)  # but they change the features
    # A prompt's gradient flows from the pooled output (a plain sum of a LayerNorm output has none).
    (vit(x) * torch.randn(2, D)).sum().backward()
    assert vit.blocks[0].vpt.prompts.grad.abs().sum() > 0
