import torch

from rs_metapeft.models.params import format_parameter_table, parameter_table
from rs_metapeft.peft import PeftConfig

from ..conftest import TINY_VIT

D, H, DEPTH, P = 192, 768, 2, 8  # ViT-Tiny width, MLP width, test depth, patch size
BANDS = ["B02", "B03", "B04", "B08"]
C, K = len(BANDS), 5
R, BOT, PROMPTS = 4, 8, 3


def _table(configs, stem="band_mix"):
    rows = parameter_table(configs, BANDS, K, img_size=32, patch_size=P, stem=stem,
                           backbone_kwargs=TINY_VIT)
    return {row["config"]: row for row in rows}


def test_exact_trainable_counts_per_configuration():
    torch.manual_seed(0)
    lora = {"q": R * 2 * D, "k": R * 2 * D, "v": R * 2 * D, "o": R * 2 * D,
            "fc1": R * (D + H), "fc2": R * (H + D)}
    adaptformer = 2 * D + (D * BOT + BOT) + (BOT * D + D)
    adapter = (D * BOT + BOT) + (BOT * D + D)
    rows = _table({
        "lora-all": PeftConfig(positions=list(lora), rank=R),
        "lora-qv-channel": PeftConfig(positions=["q", "v"], rank=R, gamma_shape="channel"),
        "adaptformer": PeftConfig(positions=["adaptformer"], bottleneck=BOT),
        "adapter-last": PeftConfig(positions=["adapter"], bottleneck=BOT, layers=[-1]),
        "linear_probe": PeftConfig(method="linear_probe"),
        "bitfit": PeftConfig(method="bitfit"),
        "vpt_deep": PeftConfig(method="vpt_deep", prompts=PROMPTS),
        "full": PeftConfig(method="full"),
    })
    head, stem = D * K + K, 3 * C + 3
    biases_per_block = D + 3 * D + D + H + D + D  # norm1, qkv, proj, fc1, fc2, norm2
    bitfit = DEPTH * biases_per_block + D + D  # + patch embedding bias + final norm bias
    expected = {
        "lora-all": (DEPTH * sum(lora.values()), DEPTH * 6),
        "lora-qv-channel": (DEPTH * (lora["q"] + lora["v"]), DEPTH * 2 * D),
        "adaptformer": (DEPTH * adaptformer, DEPTH),
        "adapter-last": (adapter, 1),
        "linear_probe": (0, 0),
        "bitfit": (bitfit, 0),
        "vpt_deep": (DEPTH * PROMPTS * D, 0),
    }
    for name, (peft, gamma) in expected.items():
        row = rows[name]
        got = (row["peft"], row["gamma"], row["stem"], row["head"])
        assert got == (peft, gamma, stem, head), name
        assert row["trainable"] == peft + gamma + stem + head
    full = rows["full"]
    assert full["peft"] == full["backbone"] and full["gamma"] == 0
    assert 99 < full["percent"] <= 100
    table = format_parameter_table(list(rows.values()))
    assert f"| lora-all | {DEPTH * sum(lora.values()):,} |" in table


def test_stem_counts():
    cfg = {"probe": PeftConfig(method="linear_probe")}
    assert _table(cfg, "rgb_select")["probe"]["stem"] == 0
    assert _table(cfg, "patch_expand")["probe"]["stem"] == D * C * P * P + C + D
    # The hypernetwork's size does not depend on the number of bands.
    hyper = _table(cfg, "wavelength_hyper")["probe"]["stem"]
    bank, embed, hidden = (3 + 8) * D * P * P, 16, 64
    assert hyper == bank + D + 4 * embed + (embed * hidden + hidden) + (hidden * 11 + 11)
