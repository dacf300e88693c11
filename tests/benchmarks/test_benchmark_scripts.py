"""The benchmark scripts' smallest paths, on real two-step runs, so the scripts do not rot."""

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import efficacy  # noqa: E402
import harness  # noqa: E402
import render  # noqa: E402
import speed  # noqa: E402

from ..conftest import TINY_SPEC  # noqa: E402


def _overrides(root, tmp_path, method):
    profile = harness.dataclasses.replace(harness.PROFILES["quick"], steps=2)
    base = harness.base_overrides(profile, "s2", 0, None, tmp_path)
    base["data.init_args"].update(root=str(root),
                                  synthetic_imbalance_ratio=TINY_SPEC.imbalance_ratio)
    rank = harness.paper_rank(profile.num_classes, profile.blocks)
    return {**base, **efficacy.methods(rank)[method]}


def test_paper_rank_rule():
    assert harness.paper_rank(10, 12) == 1
    assert harness.paper_rank(4, 12) == 1
    assert harness.paper_rank(100, 2) == 16


def test_unknown_option_is_reported_not_run():
    assert harness.available({"model.peft.positions": ["q"]}) is None
    assert "model.peft.no_such_option" in harness.available({"model.peft.no_such_option": 1})


def test_efficacy_rows_targets_json_and_page(tiny_s2_root, tmp_path):
    per_seed = {}
    for method in (efficacy.REFERENCE, "MetaPEFT-LoRA"):
        run = harness.fit_and_evaluate(_overrides(tiny_s2_root, tmp_path / method, method))
        assert 0.0 <= run["val_class_mean"] <= 1.0 and run["train_s"] > 0
        per_seed[method] = [efficacy.summarise(run)]
    assert per_seed["MetaPEFT-LoRA"][0]["trainable_parameters"] > \
        per_seed[efficacy.REFERENCE][0]["trainable_parameters"]
    rows = efficacy.aggregate(per_seed)
    targets = efficacy.check_targets(rows)
    by = {t["target"]: t for t in targets}
    few = by["few >= LoRA q,v paper defaults + 3 pt"]
    assert few["status"] == ("PASS" if few["value"] >= few["bound"] else "FAIL")
    assert by["few >= Optuna-selected trial - 0.5 pt"]["status"] == "n/a"  # no Optuna row
    result = {"datasets": {"s2": {"rows": rows, "targets": targets}}}
    table = efficacy.display_rows(result)
    assert [r["method"] for r in table] == [efficacy.REFERENCE, "MetaPEFT-LoRA"]
    assert " ± " in table[0]["few"]
    result.update(title="Efficacy (test)", command="pytest", machine=harness.machine(),
                  rows=table, seeds=[0])
    path = harness.write_result("efficacy-test", result, tmp_path / "results")
    assert json.loads(path.read_text())["rows"][0]["method"] == efficacy.REFERENCE
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\nHand-written intro.\n")
    render.render_page(path.parent, page)
    text = render.render_page(path.parent, page)  # twice: the block is replaced, not repeated
    assert text.count("## Efficacy (test)") == 1 and "Hand-written intro." in text
    assert "MetaPEFT-LoRA" in text and "- Seeds: 0" in text and "- Command: `pytest`" in text
    site = tmp_path / "site.md"
    site.write_text(f"# Benchmarks\n\n{render.SITE_MARKER}\n")
    assert render.render_page(path.parent, site) == site.read_text()  # the site build renders it


def test_render_refuses_a_result_without_machine(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"title": "t", "command": "c", "rows": [{}]}))
    with pytest.raises(ValueError, match="machine"):
        render.render_page(tmp_path, tmp_path / "page.md")


def test_floor_step_sends_gradients_only_to_the_block_input(tiny_s2_root, tmp_path):
    cli = harness.build(_overrides(tiny_s2_root, tmp_path, "linear probe"))
    model = cli.model.model
    for p in model.parameters():
        p.requires_grad_(False)
    image = torch.rand(2, 13, 32, 32)
    grad = speed.floor_step(model, image, torch.tensor([0, 1]), first=1)
    assert grad.shape == (2, 1 + (32 // 8) ** 2, model.backbone.num_features)
    assert grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())
    # One outer step in every 4 steps: a median of single steps would hide it (ratio 1.0).
    rows, ratios = speed.summarise({"times": {"fixed-gamma PEFT": [0.2] * 8,
                                              "MetaPEFT": [0.2, 0.2, 0.2, 0.6] * 2,
                                              speed.FLOOR: [0.1] * 8},
                                    "memory": {}, "rss_growth": {}, "loader_images_s": 80.0,
                                    "every": 4},
                                   batch_size=8)
    by = {r["ratio"]: r for r in ratios}
    assert by["MetaPEFT / fixed-gamma PEFT"]["value"] == pytest.approx(1.5)
    assert by["MetaPEFT / fixed-gamma PEFT"]["status"] == "FAIL"
    assert by["fixed-gamma PEFT / floor"]["value"] == pytest.approx(2.0)
    assert by["fixed-gamma PEFT / full fine-tuning"]["value"] is None
