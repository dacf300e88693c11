"""Multi-label scenes end to end through the command line: fit, test, predict-chips and export.

The run is the multi-label demo recipe's twin on a tiny generated BigEarthNet-layout set (see
the ``multilabel_run`` fixture); the task follows the datamodule's ``multilabel``.
"""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import yaml

from rs_metapeft.checkpointing import METADATA_KEY, read_checkpoint
from rs_metapeft.cli import main
from rs_metapeft.export import read_manifest
from rs_metapeft.inference import load_model

from .conftest import TINY_MULTILABEL, multilabel_test_images
from .data.fakes import write_geotiff


def test_fit_makes_a_multilabel_task_with_thresholds_from_validation(multilabel_run,
                                                                    multilabel_checkpoint):
    report = json.loads((multilabel_run / "report.json").read_text())
    assert report["task"] == "multilabel" and report["meta"]["outer_steps"] == 2
    assert len(report["per_class"]) == 19 and report["num_test_images"] == 6
    assert report["thresholds_source"] == "best F1 on 6 validation samples"
    info = read_checkpoint(multilabel_checkpoint)
    meta = info[METADATA_KEY]
    assert meta["multilabel"] and info["hyper_parameters"]["multilabel"]
    assert torch.allclose(info["state_dict"]["thresholds"], torch.tensor(meta["thresholds"]))
    assert meta["thresholds"] != [0.5] * 19  # chosen, not the default
    assert [r["threshold"] for r in report["per_class"]] == meta["thresholds"]
    assert meta["train_samples"] == TINY_MULTILABEL["num_train"]


def test_test_subcommand_rewrites_the_same_report(multilabel_run, multilabel_checkpoint,
                                                  tmp_path):
    recipe = multilabel_run.parents[2] / "recipe.yaml"
    # (with --ckpt_path, LightningCLI takes the model's settings, report_dir too, from the
    # checkpoint; the run folder is the trainer's)
    assert main(["test", "--config", str(recipe), "--ckpt_path", str(multilabel_checkpoint),
                 f"--trainer.default_root_dir={tmp_path}"]) == 0
    fitted = json.loads((multilabel_run / "report.json").read_text())
    (written,) = tmp_path.rglob("report.json")
    tested = json.loads(written.read_text())
    for key in ("macro_map", "micro_map", "macro_f1", "micro_f1"):
        assert tested[key] == fitted[key], key


def test_evaluate_rewrites_the_same_report(multilabel_run, multilabel_checkpoint, tmp_path):
    from rs_metapeft.api import evaluate

    recipe = multilabel_run.parents[2] / "recipe.yaml"
    out = tmp_path / "test"
    tested = evaluate(multilabel_checkpoint, str(recipe), output=out, verbose=False)
    fitted = json.loads((multilabel_run / "report.json").read_text())
    for key in ("macro_map", "micro_map", "macro_f1", "micro_f1"):
        assert tested[key] == fitted[key], key
    assert tested["thresholds_source"] == fitted["thresholds_source"]  # from the checkpoint
    assert "# Label-tail report" in (out / "report.md").read_text()


def _write_chips(folder: Path, run: Path, count: int = 3) -> torch.Tensor:
    images, bands = multilabel_test_images(run, count)
    for i, image in enumerate(images):
        write_geotiff(folder / f"chip{i}.tif", image.numpy().astype(np.float32), bands)
    return images


def test_predict_chips_writes_label_sets_and_scores(multilabel_run, multilabel_checkpoint,
                                                    tmp_path):
    chips = tmp_path / "chips"
    images = _write_chips(chips, multilabel_run)
    out = tmp_path / "labels.csv"
    ckpt = multilabel_checkpoint
    assert main(["predict-chips", str(ckpt), str(chips), "-o", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    task = load_model(ckpt)
    assert list(rows[0]) == ["path", "labels", "num_labels", *task.class_names, "all_nodata"]
    with torch.no_grad():
        scores = torch.sigmoid(task(torch.nn.functional.interpolate(
            images, size=32, mode="bilinear", align_corners=False)))
    for row, score in zip(rows, scores, strict=True):
        assert [float(row[n]) for n in task.class_names] == [round(float(s), 6) for s in score]
        expected = [n for n, s, t in zip(task.class_names, score, task.thresholds, strict=True)
                    if s >= t]
        assert row["labels"] == ";".join(expected) and int(row["num_labels"]) == len(expected)


def _pixels(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


@pytest.mark.parametrize("flags", [[], ["--include-backbone"]], ids=["adapter", "self-contained"])
def test_export_predicts_the_checkpoints_label_sets_and_scores(multilabel_run,
                                                               multilabel_checkpoint, flags,
                                                               tmp_path, capsys):
    chips = tmp_path / "chips"
    _write_chips(chips, multilabel_run)
    ckpt, out = multilabel_checkpoint, tmp_path / "export"
    assert main(["export", str(ckpt), "--out", str(out), *flags]) == 0
    assert "multi-label: 19 labels, each with its threshold" in capsys.readouterr().out
    manifest, meta = read_manifest(out), read_checkpoint(ckpt)[METADATA_KEY]
    assert manifest["multilabel"] and manifest["format_version"] == 4
    assert manifest["base"]["included"] == bool(flags)
    assert manifest["classes"] == meta["classes"] and manifest["thresholds"] == meta["thresholds"]
    exported = load_model(out)
    assert exported.multilabel and exported.class_names == meta["classes"]
    assert exported.thresholds.tolist() == meta["thresholds"] != [0.5] * 19
    tables = {}
    for name, source in (("checkpoint", ckpt), ("export", out)):
        tables[name] = tmp_path / f"{name}.csv"
        assert main(["predict-chips", str(source), str(chips), "-o", str(tables[name])]) == 0
    rows = list(csv.DictReader(tables["export"].open()))
    assert list(rows[0])[:3] == ["path", "labels", "num_labels"]
    assert tables["export"].read_text() == tables["checkpoint"].read_text()
    scene = next(chips.glob("*.tif"))  # one chip is a scene of one tile
    maps = {}
    for name, source in (("checkpoint", ckpt), ("export", out)):
        assert main(["predict-scene", str(source), str(scene), "-o", str(tmp_path / name)]) == 0
        maps[name] = [_pixels(tmp_path / f"{name}_{kind}.tif") for kind in ("labels", "scores")]
    for exported_map, checkpoint_map in zip(maps["export"], maps["checkpoint"], strict=True):
        assert np.array_equal(exported_map, checkpoint_map, equal_nan=True)


def test_evaluate_an_export_rewrites_the_checkpoints_report(multilabel_run,
                                                            multilabel_checkpoint, tmp_path):
    from rs_metapeft.api import evaluate

    out = tmp_path / "export"
    assert main(["export", str(multilabel_checkpoint), "--out", str(out)]) == 0
    tested = evaluate(out, str(multilabel_run.parents[2] / "recipe.yaml"),
                      output=tmp_path / "test", verbose=False)
    fitted = json.loads((multilabel_run / "report.json").read_text())
    for key in ("macro_map", "micro_map", "macro_f1", "micro_f1", "thresholds_source"):
        assert tested[key] == fitted[key], key
    assert [r["threshold"] for r in tested["per_class"]] == [
        r["threshold"] for r in fitted["per_class"]]


def test_export_of_a_multilabel_model_refuses_single_label_accuracy(multilabel_run,
                                                                   multilabel_checkpoint,
                                                                   tmp_path, capsys):
    recipe = multilabel_run.parents[2] / "recipe.yaml"
    out = tmp_path / "out"
    assert main(["export", str(multilabel_checkpoint), "--out", str(out),
                 "--data-config", str(recipe)]) == 2
    assert "multi-label model; --data-config measures single-label" in capsys.readouterr().err
    assert not out.exists()


def test_demo_multilabel_trains_and_writes_the_label_tail_report(tmp_path):
    """``demo multilabel`` is ``fit`` on the demo_multilabel recipe; overrides shrink it."""
    run = tmp_path / "run"
    sizes = {"root": tmp_path / "data", **TINY_MULTILABEL, "image_size": 32, "batch_size": 8,
             "meta_batch_size": 4}
    overrides = [
        f"--trainer.default_root_dir={run}", "--trainer.max_steps=2", "--trainer.max_epochs=2",
        "--trainer.accelerator=cpu", "--trainer.limit_val_batches=1",
        "--trainer.enable_progress_bar=false", "--model.img_size=32",
        "--model.backbone_kwargs={depth: 2}", "--model.meta.every_n_steps=1",
        "--model.meta.warmup_steps=0",
        *(f"--data.init_args.{key}={value}" for key, value in sizes.items()),
    ]
    assert main(["demo", "multilabel", *overrides]) == 0
    (path,) = run.rglob("report.json")
    config = yaml.safe_load((path.parent / "config.yaml").read_text())
    assert config["data"]["class_path"] == "rs_metapeft.data.SyntheticBigEarthNetDataModule"
    assert config["data"]["init_args"]["bands"] == "all"
    report = json.loads(path.read_text())
    assert report["task"] == "multilabel" and report["meta"]["outer_steps"] == 2
    for key in ("micro_map", "macro_map", "micro_f1", "macro_f1"):
        assert 0 <= report[key] <= 1, key
    assert set(report["group_map"]) == {"many", "medium", "few"}
    rows = report["per_class"]
    assert len(rows) == 19 and sum(r["train_count"] for r in rows) >= TINY_MULTILABEL["num_train"]
    assert all(0 < r["train_frequency"] <= 1 for r in rows if r["train_count"])
    assert report["num_test_images"] == TINY_MULTILABEL["num_test"]
    assert len(report["co_occurrence"]["matrix"]) == 19 and report["gamma"]
    md = (path.parent / "report.md").read_text()
    assert "# Label-tail report" in md and "macro mAP" in md and "Label co-occurrence" in md
    assert (path.parent / "report.html").is_file()


def test_demo_help_lists_the_multilabel_demo(capsys):
    assert main(["demo", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split()).replace("- ", "-")  # wrapped at hyphens
    assert "multilabel recipe demo_multilabel: all bands; multi-label, 19 labels;" in out
    assert "data/demo_bigearthnet" in out and "runs/demo_multilabel" in out
    assert "multispectral recipe demo (the default): 13 bands;" in out
