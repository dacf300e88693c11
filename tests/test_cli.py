import json

import torch

from rs_metapeft.cli import main

from .conftest import TINY_SPEC, tiny_demo_recipe


def _recipe(tmp_path, root, **changes):
    return tiny_demo_recipe(tmp_path, root, **changes)


def test_two_step_fit_writes_a_report(tiny_s2_root, tmp_path):
    assert main(["fit", "--config", str(_recipe(tmp_path, tiny_s2_root))]) == 0
    reports = list((tmp_path / "run").rglob("report.json"))
    assert len(reports) == 1
    report = json.loads(reports[0].read_text())
    assert set(report["group_accuracy"]) == {"many", "medium", "few"}
    assert len(report["per_class"]) == TINY_SPEC.num_classes
    assert report["meta"]["outer_steps"] == 2
    assert (reports[0].parent / "report.md").read_text().startswith("# Tail-class report")


def test_a_holdout_fit_groups_classes_by_the_split_before_the_holdout(tiny_s2_root, tmp_path):
    """The holdout takes training images; the report's groups must not move with it."""
    path = _recipe(tmp_path, tiny_s2_root, **{"data.init_args.meta_protocol": "holdout"})
    assert main(["fit", "--config", str(path)]) == 0
    (report,) = (tmp_path / "run").rglob("report.json")
    (ckpt,) = (tmp_path / "run").rglob("last.ckpt")
    info = torch.load(ckpt, weights_only=True)["rs_metapeft"]
    assert sum(info["group_counts"]) > sum(info["train_counts"])  # the holdout came out
    rows = json.loads(report.read_text())["per_class"]
    assert [r["train_count"] for r in rows] == info["group_counts"]


def test_unknown_recipe_key_names_the_key(tiny_s2_root, tmp_path, capsys):
    path = _recipe(tmp_path, tiny_s2_root, **{"model.learning_rate": 0.1})
    assert main(["fit", "--config", str(path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and "learning_rate" in line


def test_unknown_band_names_the_band(tiny_s2_root, tmp_path, capsys):
    path = _recipe(tmp_path, tiny_s2_root, **{"data.init_args.bands": ["B04", "B03", "B77"]})
    try:
        code = main(["fit", "--config", str(path)])
    except SystemExit as exit_:  # jsonargparse's own refusal
        code = exit_.code
    assert code == 2
    assert "B77" in capsys.readouterr().err


def test_band_count_mismatch_names_data_bands(tiny_s1_root, tmp_path, capsys):
    path = _recipe(tmp_path, tiny_s1_root, **{
        "data.class_path": "rs_metapeft.data.ChipFolderDataModule",
        "data.init_args": {"root": str(tiny_s1_root), "bands": ["VV", "VH", "HH"],
                           "num_classes": TINY_SPEC.num_classes, "batch_size": 8},
    })
    assert main(["fit", "--config", str(path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()[-1:]
    assert line.startswith("error: ") and "data.bands" in line


def test_test_with_a_checkpoint_reports_where_this_run_says(trained_run, tmp_path):
    # LightningCLI takes the model's settings from the checkpoint; report_dir stays this run's
    (ckpt,) = trained_run.rglob("last.ckpt")
    folder = tmp_path / "tested"
    assert main(["test", "--config", str(trained_run / "config.yaml"), "--ckpt_path", str(ckpt),
                 f"--model.report_dir={folder}", f"--trainer.default_root_dir={tmp_path}"]) == 0
    assert json.loads((folder / "report.json").read_text())["num_test_images"] > 0
