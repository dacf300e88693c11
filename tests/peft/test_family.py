import pytest
import torch

from rs_metapeft.peft import PeftConfig, gamma_parameters, inject_peft, peft_modules

from .test_modulated import _randomise, _vit

D, HIDDEN, DEPTH = 192, 768, 2


def _trainable(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_sequential_adapter_acts_on_the_mlp_output():
    vit = _vit()
    block = vit.blocks[0]
    x = torch.randn(2, 17, D)
    (adapter,) = inject_peft(vit, PeftConfig(positions=["adapter"], layers=[0]))
    assert torch.allclose(block(x), _vit().blocks[0](x))  # Up starts at zero: a no-op
    _randomise([adapter])
    y = x + block.attn(block.norm1(x))
    h = block.mlp(block.norm2(y))
    expected = y + h + adapter.alpha * adapter.up(torch.relu(adapter.down(h)))
    assert torch.allclose(block(x), expected, atol=1e-5)
    adapter.set_modulation(0.0)
    assert torch.allclose(block(x), _vit().blocks[0](x), atol=1e-6)


@pytest.mark.parametrize("position", ["q", "fc1", "adaptformer", "adapter"])
def test_per_channel_gamma_scales_each_output_channel(position):
    vit = _vit()
    (module,) = inject_peft(vit, PeftConfig(positions=[position], layers=[0],
                                            gamma_shape="channel", gamma_param="identity"))
    assert module.gamma.dim() == 1 and module.gamma.numel() > 1
    _randomise([module])
    x = torch.randn(3, module.lora_A.shape[1] if hasattr(module, "lora_A") else D)
    full = module(x)
    with torch.no_grad():
        module.gamma.zero_()
        module.gamma[0] = 2.0
    out = module(x)
    assert torch.allclose(out[:, 0], 2 * full[:, 0], atol=1e-6)
    assert torch.all(out[:, 1:] == 0)


def test_per_channel_lora_delta_weight_matches_forward():
    vit = _vit()
    (lora,) = inject_peft(vit, PeftConfig(positions=["v"], layers=[0], gamma_shape="channel"))
    _randomise([lora])
    lora.gamma.data.uniform_(-1, 2)
    x = torch.randn(4, D)
    assert torch.allclose(lora(x), x @ lora.delta_weight().T, atol=1e-5)


def test_baselines_train_what_they_should():
    vit = _vit()
    assert inject_peft(vit, PeftConfig(method="linear_probe")) == [] and not _trainable(vit)
    vit = _vit()
    inject_peft(vit, PeftConfig(method="full"))
    assert _trainable(vit) == {n for n, _ in vit.named_parameters()}
    vit = _vit()
    inject_peft(vit, PeftConfig(method="bitfit"))
    assert _trainable(vit) == {n for n, _ in vit.named_parameters() if n.endswith("bias")}
    assert not gamma_parameters(vit)
    vit = _vit()
    inject_peft(vit, PeftConfig(method="vpt_deep", prompts=3))
    assert _trainable(vit) == {f"blocks.{i}.vpt.prompts" for i in range(DEPTH)}
    assert not peft_modules(vit)


def test_vpt_deep_inserts_and_drops_prompts_every_layer():
    x = torch.randn(2, 3, 32, 32)
    frozen = _vit()
    vit = _vit()
    inject_peft(vit, PeftConfig(method="vpt_deep", prompts=3))
    tokens = vit.forward_features(x)
    assert tokens.shape == frozen.forward_features(x).shape  # prompts are dropped after each block
    assert not torch.allclose(vit(x), frozen(x), atol=1e-4)  # but they change the features
    # A prompt's gradient flows from the pooled output (a plain sum of a LayerNorm output has none).
    (vit(x) * torch.randn(2, D)).sum().backward()
    assert vit.blocks[0].vpt.prompts.grad.abs().sum() > 0


def test_bad_method_and_shape_are_named():
    with pytest.raises(ValueError, match="model.peft.method"):
        PeftConfig(method="prefix")
    with pytest.raises(ValueError, match="model.peft.gamma_shape"):
        PeftConfig(gamma_shape="matrix")
