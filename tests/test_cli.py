import json

import yaml

from rs_metapeft.cli import main
from rs_metapeft.recipes import recipe_path

from .conftest import TINY_SPEC


def _recipe(tmp_path, root, **changes):
    recipe = yaml.safe_load(recipe_path("demo").read_text())
    recipe["trainer"].update(max_steps=2, max_epochs=1, default_root_dir=str(tmp_path / "run"),
                             enable_progress_bar=False, limit_val_batches=1)
    recipe["model"].update(img_size=32, backbone_kwargs={"depth": 2})
    recipe["model"]["meta"].update(every_n_steps=1, warmup_steps=0)
    recipe["data"]["init_args"].update(
        root=str(root), num_classes=TINY_SPEC.num_classes, batch_size=8, meta_batch_size=4,
        image_size=TINY_SPEC.image_size, max_per_class=TINY_SPEC.max_per_class,
        val_per_class=TINY_SPEC.val_per_class, test_per_class=TINY_SPEC.test_per_class,
        synthetic_imbalance_ratio=TINY_SPEC.imbalance_ratio,
    )
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = recipe
        for p in parents:
            node = node[p]
        node[leaf] = value
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_two_step_fit_writes_a_report(tiny_s2_root, tmp_path):
    assert main(["fit", "--config", str(_recipe(tmp_path, tiny_s2_root))]) == 0
    reports = list((tmp_path / "run").rglob("report.json"))
    assert len(reports) == 1
    report = json.loads(reports[0].read_text())
    assert set(report["group_accuracy"]) == {"many", "medium", "few"}
    assert len(report["per_class"]) == TINY_SPEC.num_classes
    assert report["meta"]["outer_steps"] == 2
    assert (reports[0].parent / "report.md").read_text().startswith("# Tail-class report")


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
