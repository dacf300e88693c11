import pytest
import torch

from rs_metapeft.peft import PeftConfig, inject_peft
from rs_metapeft.peft.lora import LoRA

from .factory import tiny_vit


def test_gamma_scales_the_module_output():
    lora = LoRA(16, 8, rank=2, alpha=2.0, dropout=0.0, layer=0, position="q")
    lora.lora_B.data.normal_()
    x = torch.randn(5, 16)
    base = lora(x)
    lora.set_modulation(0.3)
    assert torch.allclose(lora(x), 0.3 * base, atol=1e-6)


@pytest.mark.parametrize("gamma_param", ["identity", "softplus"])
def test_gamma_one_is_initial_and_softplus_stays_positive(gamma_param):
    lora = LoRA(4, 4, 1, 1.0, 0.0, 0, "v", gamma_param)
    assert torch.allclose(lora.modulation(), torch.tensor(1.0))
    lora.gamma.data.fill_(-50.0)
    assert (lora.modulation() >= 0).all() if gamma_param == "softplus" else lora.modulation() < 0


def test_bad_layers_and_positions_are_named():
    with pytest.raises(ValueError, match="model.peft.layers"):
        inject_peft(tiny_vit(), PeftConfig(positions=["q"], layers=[5]))
    with pytest.raises(ValueError, match="model.peft.positions"):
        PeftConfig(positions=["qq"])
