"""The benchmark scripts' smallest paths, on real two-step runs, so the scripts do not rot."""

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import efficacy  # noqa: E402
import harness  # noqa: E402
import multilabel  # noqa: E402
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


def test_data_options_are_checked_and_folded_into_init_args():
    assert harness.available({"data.meta_protocol": "resample"}) is None
    assert "data.no_such_option" in harness.available({"data.no_such_option": 1})
    folded = harness.fold_data_overrides({"data.class_path": "X", "data.init_args": {"a": 1},
                                          "data.meta_protocol": "resample", "model.x": 2})
    assert folded == {"data.class_path": "X", "data.init_args": {"a": 1,
                                                                 "meta_protocol": "resample"},
                      "model.x": 2}


def test_cpu_profile_runs_the_products_outer_step_schedule(tmp_path):
    from rs_metapeft.meta import MetaConfig

    base = harness.base_overrides(harness.PROFILES["cpu"], "s2", 3, None, tmp_path)
    for key in ("every_n_steps", "warmup_steps"):  # the demo recipe's own are not the product's
        assert base.get(f"model.meta.{key}", getattr(MetaConfig(), key)) == \
            getattr(MetaConfig(), key)
    assert base["data.init_args"]["test_per_class"] == 100 and base["trainer.max_steps"] == 300
    quick = harness.base_overrides(harness.PROFILES["quick"], "s2", 0, None, tmp_path)
    assert quick["model.meta.every_n_steps"] == 1 and quick["model.meta.warmup_steps"] == 0


def test_paired_ci_matches_a_hand_computed_interval():
    # Differences 0.1, 0.2, 0.3 (seed 3 unpaired, seed 4 missing a value): mean 0.2, sd 0.1,
    # t(0.975, 2) = 4.302653, half-width 4.302653 * 0.1 / sqrt(3) = 0.248414.
    a = {0: 0.5, 1: 0.6, 2: 0.7, 4: None}
    b = {0: 0.4, 1: 0.4, 2: 0.4, 3: 0.9, 4: 0.1}
    stat = efficacy.paired_ci(a, b)
    assert stat["n_seeds"] == 3 and stat["mean"] == pytest.approx(0.2)
    assert stat["ci95_low"] == pytest.approx(0.2 - 0.248414, abs=1e-6)
    assert stat["ci95_high"] == pytest.approx(0.2 + 0.248414, abs=1e-6)
    one = efficacy.paired_ci({0: 0.5}, {0: 0.4})
    assert one == {"mean": None, "ci95_low": None, "ci95_high": None, "n_seeds": 1}


def test_methods_rows_and_selection():
    table = efficacy.methods(1)
    assert set(efficacy.MAIN) | set(efficacy.ABLATIONS) == set(table)
    assert table[efficacy.NEW] == {"model.peft.rank": 1, "model.peft.alpha": 1.0,
                                   "model.peft.positions": efficacy.LORA_ALL,
                                   "model.meta.enabled": True}
    for name, revert in efficacy.ABLATIONS.items():  # one change against the new defaults
        assert table[name] == {**table[efficacy.NEW], **revert}
    args = efficacy.argparse.Namespace(methods=None, ablation=False)
    assert efficacy.selected_methods(args, table) == list(efficacy.MAIN)
    args = efficacy.argparse.Namespace(methods=[efficacy.TWIN], ablation=True)
    assert efficacy.selected_methods(args, table) == [efficacy.TWIN, *efficacy.ABLATIONS]
    with pytest.raises(SystemExit):
        efficacy.main(["--quick", "--methods", "no such method"])


def _fake_run(calls):
    """A stand-in for harness.fit_and_evaluate: MetaPEFT 0.1 above the twin on few, seeded."""

    def fit_and_evaluate(overrides):
        calls.append(overrides)
        seed = overrides["seed_everything"]
        meta = overrides.get("model.meta.enabled", False)
        few = 0.4 + 0.01 * seed + (0.1 + 0.01 * (seed % 2) if meta else 0.0)
        report = {"overall_accuracy": few + 0.2, "class_mean_accuracy": few + 0.1,
                  "macro_f1": few, "trainable_parameters": 10,
                  "group_accuracy": {"many": 0.9, "medium": 0.6, "few": few},
                  "per_class": [{"group": "few", "test_count": 3}]}
        return {"report": report, "val_class_mean": few, "val_acc": few,
                "wall_s": 2.0, "train_s": 1.1 if meta else 1.0, "step_times": []}

    return fit_and_evaluate


def test_resume_skips_runs_already_present(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(harness, "fit_and_evaluate", _fake_run(calls))
    argv = ["--quick", "--datasets", "s2", "--methods", efficacy.TWIN, efficacy.NEW,
            "--optuna-trials", "0", "--results", str(tmp_path), "--tag", "t"]
    efficacy.main([*argv, "--seeds", "0", "1"])
    assert len(calls) == 4
    result = efficacy.main([*argv, "--seeds", "0", "1", "2", "--resume"])
    assert len(calls) == 6 and {c["seed_everything"] for c in calls[4:]} == {2}
    part = json.loads((tmp_path / "efficacy-t.json").read_text())["datasets"]["s2"]
    assert result["seeds"] == [0, 1, 2]
    assert [r["seed"] for r in part["runs"][efficacy.NEW]] == [0, 1, 2]
    stat = part["paired"]["metapeft_minus_twin_few"]
    assert stat["n_seeds"] == 3 and stat["mean"] == pytest.approx(0.1 + 0.01 / 3)
    assert stat["ci95_low"] > 0.03
    assert part["paired"]["metapeft_minus_optuna_few"]["mean"] is None  # no Optuna row
    assert part["compute_ratio_vs_twin"][efficacy.NEW] == pytest.approx(1.1)
    assert [t["status"] for t in part["targets"]] == ["PASS", "n/a", "PASS"]
    efficacy.main([*argv, "--seeds", "0", "1", "2", "--resume"])
    assert len(calls) == 6  # everything was there
    changed = {**harness.product_defaults(), "model.meta.lr": 123.0}
    monkeypatch.setattr(harness, "product_defaults", lambda: changed)
    with pytest.raises(SystemExit, match="defaults changed"):  # "new defaults" must mean one thing
        efficacy.main([*argv, "--seeds", "3", "--resume"])
    efficacy.main([*argv, "--seeds", "0"])  # no --resume: a fresh file, the old one kept aside
    assert len(calls) == 8 and (tmp_path / "efficacy-t.json.bak").is_file()


def test_merge_folds_runs_of_other_tags_and_runs_nothing(tmp_path, monkeypatch):
    """Seeds run in parallel under two tags become one paired result, the first tag's file."""
    calls = []
    monkeypatch.setattr(harness, "fit_and_evaluate", _fake_run(calls))
    argv = ["--quick", "--datasets", "s2", "--methods", efficacy.TWIN, efficacy.NEW,
            "--optuna-trials", "0", "--results", str(tmp_path)]
    efficacy.main([*argv, "--tag", "a", "--seeds", "0", "1"])
    efficacy.main([*argv, "--tag", "b", "--seeds", "1", "2"])
    assert len(calls) == 8
    result = efficacy.main([*argv, "--tag", "a", "--merge", str(tmp_path / "efficacy-b.json")])
    assert len(calls) == 8  # nothing ran
    part = json.loads((tmp_path / "efficacy-a.json").read_text())["datasets"]["s2"]
    assert [r["seed"] for r in part["runs"][efficacy.NEW]] == [0, 1, 2]  # seed 1 kept once
    assert result["seeds"] == [0, 1, 2] and result["merged_from"][0].endswith("efficacy-b.json")
    assert part["paired"]["metapeft_minus_twin_few"]["n_seeds"] == 3
    with pytest.raises(SystemExit, match="does not exist"):
        efficacy.main([*argv, "--tag", "a", "--merge", str(tmp_path / "efficacy-c.json")])
    with pytest.raises(SystemExit, match="other sizes"):  # another budget cannot be paired
        efficacy.main([*argv, "--tag", "a", "--steps", "7", "--merge",
                       str(tmp_path / "efficacy-b.json")])


def test_efficacy_quick_smoke_writes_paired_json_and_page(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "DATA_DIR", tmp_path / "data")
    result = efficacy.main(["--quick", "--steps", "2", "--seeds", "0", "1", "--datasets", "s2",
                            "--methods", efficacy.TWIN, efficacy.NEW, "--optuna-trials", "1",
                            "--optuna-seeds", "0", "--results", str(tmp_path / "results")])
    (path,) = (tmp_path / "results").glob("efficacy-*.json")
    data = json.loads(path.read_text())
    part = data["datasets"]["s2"]
    assert data["seeds"] == [0, 1] and data == json.loads(json.dumps(result, default=float))
    assert (part["steps"], part["batch_size"], part["test_per_class"]) == (2, 8, 3)
    assert part["paired"]["metapeft_minus_twin_few"]["n_seeds"] == 2
    assert set(part["paired"]) >= {"metapeft_minus_twin_few", "metapeft_minus_twin_overall",
                                   "metapeft_minus_optuna_few"}
    assert part["compute_ratio_vs_twin"][efficacy.NEW] > 0
    run = part["runs"][efficacy.NEW][1]
    assert run["seed"] == 1 and run["method"] == efficacy.NEW and run["train_s"] > 0
    assert run["overrides"]["model.meta.enabled"] is True
    assert 0 <= run["val"]["class_mean"] <= 1 and 0 <= run["test"]["overall"] <= 1
    assert [r["seed"] for r in part["runs"][efficacy.OPTUNA]] == [0]
    assert [r["method"] for r in data["rows"]][:2] == [efficacy.TWIN, efficacy.NEW]
    assert " ± " in data["rows"][0]["few"]
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\nHand-written intro.\n")
    render.render_page(path.parent, page)
    text = render.render_page(path.parent, page)  # twice: the block is replaced, not repeated
    assert text.count("## Efficacy") == 1 and "Hand-written intro." in text
    assert "### Paired differences" in text and "- Seeds: 0, 1" in text
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
                                    "bare_times": {"fixed-gamma PEFT": [0.15] * 8},
                                    "memory": {}, "rss_growth": {}, "loader_images_s": 80.0,
                                    "every": 4},
                                   batch_size=8)
    by = {r["ratio"]: r for r in ratios}
    assert by["MetaPEFT / fixed-gamma PEFT"]["value"] == pytest.approx(1.5)
    assert by["MetaPEFT / fixed-gamma PEFT"]["status"] == "FAIL"
    # the cost-floor target (1.20) compares bare loops; the Lightning step is for the record
    assert by["fixed-gamma PEFT / floor (bare loop)"]["value"] == pytest.approx(1.5)
    assert by["fixed-gamma PEFT / floor (bare loop)"]["status"] == "FAIL"
    assert by["fixed-gamma PEFT (Lightning step) / floor"]["value"] == pytest.approx(2.0)
    assert by["fixed-gamma PEFT / full fine-tuning (bare loop)"]["value"] is None
    assert by["fixed-gamma PEFT / full fine-tuning (bare loop)"]["status"] == "n/a"
    row = {r["configuration"]: r for r in rows}
    assert row["fixed-gamma PEFT"]["bare_vs_floor"] == pytest.approx(1.5)
    assert row["MetaPEFT"]["bare_step_ms"] is None  # its cost is the outer step: Lightning only


def test_bare_step_trains_only_what_the_configuration_trains(tiny_s2_root, tmp_path):
    cli = harness.build(_overrides(tiny_s2_root, tmp_path, efficacy.REFERENCE))
    model = cli.model.model
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    cli.datamodule.setup("fit")
    times = speed.time_bare(cli, steps=3, skip=1, bf16=False)
    assert len(times) == 2 and all(t > 0 for t in times)
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert moved and moved <= trainable


@pytest.mark.slow  # torch.compile takes about a minute on the CPU
def test_bare_step_times_the_compiled_inner_step(tiny_s2_root, tmp_path):
    overrides = _overrides(tiny_s2_root, tmp_path, efficacy.REFERENCE)
    cli = harness.build({**overrides, "model.compile_inner_step": True})
    cli.datamodule.setup("fit")
    size = int(cli.model.hparams.img_size)
    cli.model._inner_forward(torch.rand(2, len(cli.model.model.bands), size, size))  # compiles
    assert cli.model.__dict__.get("_compiled_model") is not None
    times = speed.time_bare(cli, steps=3, skip=1, bf16=False)
    assert len(times) == 2 and all(t > 0 for t in times)


def test_speed_targets_cover_the_peft_cost_floor_and_memory():
    times = {"fixed-gamma PEFT": [0.115] * 4, "full fine-tuning": [0.2] * 4,
             "LoRA q,v (rank 4)": [0.106] * 4, speed.FLOOR: [0.1] * 4}
    _, ratios = speed.summarise({"times": times, "bare_times": times, "memory": {},
                                 "loader_images_s": None,
                                 "rss_growth": {"fixed-gamma PEFT": 300.0,
                                                "full fine-tuning": 250.0}, "every": 2},
                                batch_size=8)
    status = {r["ratio"]: r.get("status") for r in ratios}
    assert status["fixed-gamma PEFT / floor (bare loop)"] == "PASS"
    assert status["fixed-gamma PEFT / full fine-tuning (bare loop)"] == "PASS"
    assert status["LoRA q,v (rank 4) / floor (bare loop)"] == "FAIL"  # 1.06 > 1.05
    assert status["fixed-gamma PEFT memory growth / full fine-tuning's"] == "FAIL"


def test_speed_ratios_carry_intervals_that_hold_them():
    """Intervals resample single steps; MetaPEFT's resample whole cycles (its outer step falls
    once a cycle, so a median of single steps would never see it)."""
    generator = torch.Generator().manual_seed(0)

    def steps(base: float, n: int = 40) -> list[float]:
        return (base * (1 + 0.02 * torch.rand(n, generator=generator))).tolist()

    meta = steps(0.1)
    meta[::4] = [t * 3 for t in meta[::4]]  # an outer step every 4 steps: 1.5x a cycle
    times = {"fixed-gamma PEFT": steps(0.1), speed.FLOOR: steps(0.1), "MetaPEFT": meta,
             "LoRA q,v (rank 4)": steps(0.103)}
    bare = {k: v for k, v in times.items() if k not in ("MetaPEFT", speed.FLOOR)}
    _, ratios = speed.summarise({"times": times, "bare_times": bare, "memory": {},
                                 "loader_images_s": None, "rss_growth": {}, "every": 4},
                                batch_size=8)
    by_name = {r["ratio"]: r for r in ratios}
    for name in ("MetaPEFT / fixed-gamma PEFT", "LoRA q,v (rank 4) / floor (bare loop)"):
        low, high = by_name[name]["interval_95"]
        assert low <= by_name[name]["value"] <= high, name
    assert by_name["MetaPEFT / fixed-gamma PEFT"]["interval_95"][0] > 1.4


def test_model_flop_utilisation_counts_forward_and_backward(tiny_s2_root, tmp_path):
    cli = harness.build(_overrides(tiny_s2_root, tmp_path, "linear probe"))
    flops = speed.forward_flops_per_image(cli.model.model, 32)
    assert flops > 0
    raw = {"times": {"fixed-gamma PEFT": [0.5] * 4}, "memory": {}, "rss_growth": {},
           "loader_images_s": None, "every": 2, "forward_flops_per_image": flops,
           "peak_tflops": 1e-6}
    rows, _ = speed.summarise(raw, batch_size=8)  # 16 images/s
    assert rows[0]["model_flop_utilisation"] == pytest.approx(3 * flops * 16 / 1e6)
    assert speed.peak_tflops(None) is None or torch.cuda.is_available()


def test_stopped_optuna_search_resumes_at_its_next_trial(tmp_path, monkeypatch):
    calls = []
    fake = _fake_run(calls)

    def stops_at_third_trial(overrides):
        if len(calls) == 2:
            raise KeyboardInterrupt  # the session ended during trial 3
        return fake(overrides)

    monkeypatch.setattr(harness, "fit_and_evaluate", stops_at_third_trial)
    argv = ["--quick", "--datasets", "s2", "--seeds", "0", "--methods", efficacy.TWIN,
            "--optuna-trials", "3", "--optuna-seeds", "0", "--results", str(tmp_path),
            "--tag", "t", "--resume"]
    (tmp_path / "efficacy-t.json").unlink(missing_ok=True)
    with pytest.raises(KeyboardInterrupt):
        efficacy.main(argv)
    journal = tmp_path / "efficacy-t.optuna-s2-seed0.partial.json"
    assert len(json.loads(journal.read_text())) == 1  # the twin ran first, then one trial
    monkeypatch.setattr(harness, "fit_and_evaluate", fake)
    result = efficacy.main(argv)
    assert len(calls) == 4  # twin, trial 1, then only trials 2 and 3
    (best,) = result["datasets"]["s2"]["runs"][efficacy.OPTUNA]
    assert len(best["trials"]) == 3 and best["resumed_at"] == 1
    assert not journal.exists()


def _fake_multilabel_run(calls):
    """A stand-in for harness.fit_and_evaluate on the multi-label recipe: MetaPEFT +0.05 mAP."""

    def fit_and_evaluate(overrides, recipe):
        calls.append((overrides, recipe))
        seed, meta = overrides["seed_everything"], overrides.get("model.meta.enabled", False)
        few = 0.3 + 0.01 * seed + (0.05 if meta else 0.0)
        report = {"macro_map": few + 0.2, "micro_map": 0.8, "macro_f1": 0.5, "micro_f1": 0.6,
                  "group_map": {"many": 0.9, "medium": 0.6, "few": few},
                  "trainable_parameters": 10, "groups_description": "auto rule",
                  "per_class": [{"class": "Beaches", "group": "few", "train_count": 5,
                                 "test_count": 7},
                                {"class": "Forest", "group": "many", "train_count": 300,
                                 "test_count": 90}]}
        return {"report": report, "val": {"val/mAP": few}, "wall_s": 3.0,
                "train_s": 1.2 if meta else 1.0, "fit_s": 2.2 if meta else 2.0}

    return fit_and_evaluate


def test_multilabel_runs_are_paired_and_resume(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(harness, "DATA_DIR", tmp_path / "data")
    monkeypatch.setattr(harness, "fit_and_evaluate", _fake_multilabel_run(calls))
    argv = ["--quick", "--results", str(tmp_path), "--tag", "t"]
    multilabel.main([*argv, "--seeds", "0", "1"])
    assert len(calls) == 2 * 2 * 4 and {recipe for _, recipe in calls} == {"demo_multilabel"}
    for seed in (0, 1):  # one seed: every method sees the same data, bands and seed
        for bands in ("s2", "all"):
            same = [o for o, _ in calls if o["seed_everything"] == seed
                    and o["data.init_args"]["bands"] == bands]
            assert len(same) == 4 and all(o["data.init_args"] == same[0]["data.init_args"]
                                          for o in same)
    result = multilabel.main([*argv, "--seeds", "0", "1", "2", "--resume"])
    assert len(calls) == 24 and {o["seed_everything"] for o, _ in calls[16:]} == {2}
    part = result["datasets"]["s1s2"]
    stat = part["paired"]["metapeft_minus_twin_few"]
    assert stat["n_seeds"] == 3 and stat["mean"] == pytest.approx(0.05)
    assert part["paired"]["metapeft_minus_twin_macro_map"]["mean"] == pytest.approx(0.05)
    assert part["compute_ratio_vs_twin"] == pytest.approx(1.2)
    assert part["fit_ratio_vs_twin"] == pytest.approx(1.1)
    assert part["few_test_positives"] == 7 and part["few_labels"][0]["label"] == "Beaches"
    assert [r["method"] for r in part["rows"]] == list(multilabel.ORDER)
    assert part["rows"][0]["few"]["n_seeds"] == 3
    with pytest.raises(SystemExit, match="--weights"):
        multilabel.main([*argv, "--seeds", "3", "--resume", "--weights", "other.pth"])


def test_multilabel_quick_smoke_writes_map_json_and_page(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "DATA_DIR", tmp_path / "data")
    result = multilabel.main(["--quick", "--steps", "2", "--seeds", "0", "1", "--datasets",
                              "s1s2", "--methods", multilabel.TWIN, multilabel.METAPEFT,
                              "--results", str(tmp_path / "results")])
    (path,) = (tmp_path / "results").glob("multilabel-*.json")
    data = json.loads(path.read_text())
    assert data == json.loads(json.dumps(result, default=float))
    assert data["seeds"] == [0, 1] and data["sizes"]["steps"] == 2
    assert data["sizes"]["num_test"] == multilabel.DATA_SIZES["quick"].num_test
    part = data["datasets"]["s1s2"]
    for key in ("metapeft_minus_twin_macro_map", "metapeft_minus_twin_few"):
        stat = part["paired"][key]
        assert stat["n_seeds"] == 2 and stat["ci95_low"] <= stat["mean"] <= stat["ci95_high"]
    assert part["few_labels"] and part["few_test_positives"] == sum(
        r["test_positives"] for r in part["few_labels"]) > 0
    assert part["compute_ratio_vs_twin"] > 0 and part["fit_ratio_vs_twin"] > 0
    run = part["runs"][multilabel.METAPEFT][1]
    assert run["seed"] == 1 and run["overrides"]["model.meta.enabled"] is True
    assert 0 <= run["test"]["macro_map"] <= 1 and 0 <= run["val"]["mAP"] <= 1
    assert run["selection"]["meta"]["outer_steps"] == 2
    assert [r["method"] for r in data["rows"]] == [multilabel.TWIN, multilabel.METAPEFT]
    assert " ± " in data["rows"][0]["macro mAP"] and data["rows"][1]["few − twin"]
    (paired,) = next(iter(data["tables"].values()))
    assert paired["dataset"] == "s1s2" and paired["train_s ratio"] > 0
    assert "test positives" in data["notes"]
    text = render.render_page(path.parent, tmp_path / "benchmarks.md")
    assert "## Multi-label long tail" in text and "### MetaPEFT − twin" in text


def test_lora_merge_compares_both_forms_and_restores_the_merged_one(tmp_path):
    import lora_merge

    from rs_metapeft.peft import adaptformer, lora

    result = lora_merge.main(["--quick", "--rounds", "1", "--steps", "1", "--warmup", "0",
                              "--batch-size", "2", "--no-memory", "--results", str(tmp_path)])
    names = [r["configuration"] for r in result["rows"]]
    assert names[0] == lora_merge.FLOOR and "all seven, written out" in names
    assert all(r["bare_step_ms"] > 0 for r in result["rows"])
    assert lora.merged_lora_linear is lora_merge.MERGED  # the swap does not leak
    assert adaptformer.adaptformer_branch is lora_merge.RECOMPUTING
    assert (tmp_path / "lora_merge.json").is_file()
