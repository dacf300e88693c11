"""The rs-metapeft subcommands around runs and recipes (training itself: test_cli.py)."""

import json
import shutil

import pytest
import yaml

from rs_metapeft.cli import main
from rs_metapeft.recipes import list_recipes, recipe_path

from .conftest import TINY_SPEC


def test_overview_lists_every_subcommand(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("fit", "validate", "test", "predict", "demo", "stats", "report", "compare",
                 "export", "recipes", "predict-chips", "predict-scene"):
        assert f"  {name} " in out


@pytest.mark.parametrize("name", ["fit", "validate", "test", "predict", "recipes", "report",
                                  "compare", "predict-chips", "predict-scene"])
def test_subcommand_help_says_what_with_an_example(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    # help text is re-wrapped to the terminal width, also at hyphens
    out = " ".join(capsys.readouterr().out.split()).replace("- ", "-")
    assert "Example:" in out
    assert f"rs-metapeft {name}" in out


@pytest.mark.parametrize("name", ["demo"])
def test_help_of_commands_without_their_own_parser(name, capsys):
    assert main([name, "--help"]) == 0
    assert "Example:" in capsys.readouterr().out


def test_recipes_list_show_copy(tmp_path, capsys):
    assert main(["recipes", "list"]) == 0
    listed = capsys.readouterr().out
    for name in list_recipes():
        assert name in listed
    assert "So2Sat" in listed  # each line says what the recipe is for
    assert main(["recipes", "show", "demo_sar"]) == 0
    assert "SyntheticSARDataModule" in capsys.readouterr().out
    assert main(["recipes", "copy", "geotiff_folder", str(tmp_path)]) == 0
    assert (tmp_path / "geotiff_folder.yaml").read_text().startswith("# Your own GeoTIFF")
    assert main(["recipes", "copy", "geotiff_folder", str(tmp_path)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["recipes", "show", "eurosat"]) == 2
    assert "eurosat_ms_lt" in capsys.readouterr().err  # lists the shipped recipes


@pytest.mark.parametrize("form", ["split", "equals"])
def test_shipped_recipe_names_work_for_config(form, capsys):
    args = ["--config", "eurosat_rgb_lt"] if form == "split" else ["--config=eurosat_rgb_lt"]
    with pytest.raises(SystemExit):
        main(["fit", *args, "--trainer.max_epochs=3", "--print_config"])
    out = capsys.readouterr().out
    assert "EuroSATLongTailDataModule" in out
    assert "max_epochs: 3" in out
    assert "- B04" in out


def test_demo_sar_trains_and_reports_with_the_sar_recipe(tiny_s1_root, tmp_path):
    """``demo sar`` is ``fit`` on the demo_sar recipe; its overrides shrink it to two steps."""
    run = tmp_path / "run"
    sizes = dict(root=tiny_s1_root, num_classes=TINY_SPEC.num_classes, batch_size=8,
                 meta_batch_size=4, max_per_class=TINY_SPEC.max_per_class,
                 val_per_class=TINY_SPEC.val_per_class, test_per_class=TINY_SPEC.test_per_class,
                 image_size=TINY_SPEC.image_size,
                 synthetic_imbalance_ratio=TINY_SPEC.imbalance_ratio)
    overrides = [
        f"--trainer.default_root_dir={run}", "--trainer.max_steps=2", "--trainer.max_epochs=1",
        "--trainer.accelerator=cpu", "--trainer.limit_val_batches=1",
        "--trainer.limit_test_batches=2", "--trainer.enable_progress_bar=false",
        f"--model.img_size={TINY_SPEC.image_size}", "--model.backbone_kwargs={depth: 2}",
        "--model.meta.every_n_steps=1", "--model.meta.warmup_steps=0",
        *(f"--data.init_args.{key}={value}" for key, value in sizes.items()),
    ]
    assert main(["demo", "sar", *overrides]) == 0
    (report,) = run.rglob("report.json")
    config = yaml.safe_load((report.parent / "config.yaml").read_text())
    assert config["data"]["class_path"] == "rs_metapeft.data.SyntheticSARDataModule"
    assert config["data"]["init_args"]["bands"] == ["VV", "VH"]
    assert config["model"]["peft"]["positions"] == yaml.safe_load(
        recipe_path("demo_sar").read_text())["model"]["peft"]["positions"]
    assert json.loads(report.read_text())["meta"]["outer_steps"] == 2


def test_demo_unknown_kind_lists_choices():
    with pytest.raises(SystemExit, match="multispectral, sar"):
        main(["demo", "hyperspectral"])


@pytest.mark.parametrize(("override", "message"), [
    ("--model.optimizer.name=adam", "model.optimizer.name must be one of sgd, adamw, got 'adam'"),
    ("--model.meta.hypergradient=second", "model.meta.hypergradient must be one of first_order, "
                                          "unrolled, unrolled_k, got 'second'"),
    ("--data.init_args.meta_protocol=bogus", "data.meta_protocol must be one of holdout, "
                                             "val_split, resample, got 'bogus'"),
    ("--model.peft.positions=[q,zz]", "model.peft.positions must be one of q, k, v, o, fc1, fc2, "
                                      "adaptformer, adapter, got 'zz'"),
])
def test_a_value_outside_the_choices_is_one_line_listing_them(override, message, capsys):
    """Choices are Literal types: the parser refuses the value before anything is built."""
    assert main(["fit", "--config", "demo", override]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {message}")


def test_help_lists_the_choices(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help-all"])  # the full help; --help is the short one (test_console.py)
    out = capsys.readouterr().out
    for option in ("--model.meta.hypergradient {first_order,unrolled,unrolled_k}",
                   "--model.stem {rgb_select,band_mix,patch_expand,wavelength_hyper}",
                   "--model.peft.gamma_param {identity,softplus,log}"):
        assert option in out


@pytest.mark.parametrize(("name", "words"), [("stats", "statistics"), ("export", "export")])
def test_stats_and_export_subcommands_answer_help(name, words, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"rs-metapeft {name}" in out and words in out.lower()


def test_report_regenerates_md_and_html(trained_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "report.html").unlink()
    (run / "report.md").unlink()
    assert main(["report", str(run)]) == 0
    html = (run / "report.html").read_text()
    # curves, accuracy, confusion, gamma heatmap and gamma history (the effective scales are a
    # table: their heatmap would repeat the gamma heatmap's colours)
    assert html.count("data:image/png;base64,") == 5
    assert (run / "report.md").read_text().startswith("# Tail-class report")
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "no report.json" in capsys.readouterr().err


def test_compare_prints_and_writes_a_table(trained_run, tmp_path, capsys):
    other = tmp_path / "baseline" / "lightning_logs" / "version_0"
    other.mkdir(parents=True)
    report = json.loads((trained_run / "report.json").read_text())
    report.update(overall_accuracy=0.5, fit_wall_time_s=12.25, trainable_parameters=1234)
    (other / "report.json").write_text(json.dumps(report))
    out_base = tmp_path / "cmp"
    assert main(["compare", str(trained_run), str(other), "-o", str(out_base)]) == 0
    printed = capsys.readouterr().out
    assert "baseline" in printed and "50.0" in printed and "12.2" in printed and "1,234" in printed
    assert (tmp_path / "cmp.md").read_text() in printed
    assert (tmp_path / "cmp.csv").read_text().splitlines()[0].startswith("run,meta,overall,")


def test_unknown_data_module_lists_the_valid_ones(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data:\n  class_path: rs_metapeft.data.EuroSATDataModul\n")
    with pytest.raises(SystemExit, match=r"EuroSATDataModul.*valid: .*EuroSATLongTailDataModule"):
        main(["fit", "--config", str(recipe)])
