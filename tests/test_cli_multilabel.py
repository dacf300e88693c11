"""Multi-label scenes end to end through the command line: fit, test and predict-chips.

The run is the multi-label demo recipe's twin on a tiny generated BigEarthNet-layout set (see
the ``multilabel_run`` fixture); the task follows the datamodule's ``multilabel``.
"""

import csv
import json
from pathlib import Path

import numpy as np
import torch

from rs_metapeft.checkpointing import METADATA_KEY, read_checkpoint
from rs_metapeft.cli import main
from rs_metapeft.data import SyntheticBigEarthNetDataModule
from rs_metapeft.inference import load_model

from .conftest import TINY_MULTILABEL
from .data.fakes import write_geotiff


def _checkpoint(run: Path) -> Path:
    (ckpt,) = run.rglob("last.ckpt")
    return ckpt


def test_fit_makes_a_multilabel_task_with_thresholds_from_validation(multilabel_run):
    report = json.loads((multilabel_run / "report.json").read_text())
    assert report["task"] == "multilabel" and report["meta"]["outer_steps"] == 2
    assert len(report["per_class"]) == 19 and report["num_test_images"] == 6
    assert report["thresholds_source"] == "best F1 on 6 validation samples"
    info = read_checkpoint(_checkpoint(multilabel_run))
    meta = info[METADATA_KEY]
    assert meta["multilabel"] and info["hyper_parameters"]["multilabel"]
    assert torch.allclose(info["state_dict"]["thresholds"], torch.tensor(meta["thresholds"]))
    assert meta["thresholds"] != [0.5] * 19  # chosen, not the default
    assert [r["threshold"] for r in report["per_class"]] == meta["thresholds"]
    assert meta["train_samples"] == TINY_MULTILABEL["num_train"]


def test_test_subcommand_rewrites_the_same_report(multilabel_run, tmp_path):
    recipe = multilabel_run.parents[2] / "recipe.yaml"
    # (with --ckpt_path, LightningCLI takes the model's settings, report_dir too, from the
    # checkpoint; the run folder is the trainer's)
    assert main(["test", "--config", str(recipe), "--ckpt_path", str(_checkpoint(multilabel_run)),
                 f"--trainer.default_root_dir={tmp_path}"]) == 0
    fitted = json.loads((multilabel_run / "report.json").read_text())
    (written,) = tmp_path.rglob("report.json")
    tested = json.loads(written.read_text())
    for key in ("macro_map", "micro_map", "macro_f1", "micro_f1"):
        assert tested[key] == fitted[key], key


def test_evaluate_rewrites_the_same_report(multilabel_run, tmp_path):
    from rs_metapeft.api import evaluate

    recipe = multilabel_run.parents[2] / "recipe.yaml"
    out = tmp_path / "test"
    tested = evaluate(_checkpoint(multilabel_run), str(recipe), output=out, verbose=False)
    fitted = json.loads((multilabel_run / "report.json").read_text())
    for key in ("macro_map", "micro_map", "macro_f1", "micro_f1"):
        assert tested[key] == fitted[key], key
    assert tested["thresholds_source"] == fitted["thresholds_source"]  # from the checkpoint
    assert "# Label-tail report" in (out / "report.md").read_text()


def _write_chips(folder: Path, data_root: Path, count: int = 3) -> torch.Tensor:
    dm = SyntheticBigEarthNetDataModule(root=str(data_root), **TINY_MULTILABEL)
    dm.setup("test")
    images = torch.stack([dm.test_dataset[i]["image"] for i in range(count)])
    for i, image in enumerate(images):
        write_geotiff(folder / f"chip{i}.tif", image.numpy().astype(np.float32), dm.bands)
    return images


def test_predict_chips_writes_label_sets_and_scores(multilabel_run, tmp_path):
    chips = tmp_path / "chips"
    images = _write_chips(chips, multilabel_run.parents[2] / "data")
    out = tmp_path / "labels.csv"
    ckpt = _checkpoint(multilabel_run)
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


def test_predict_scene_refuses_a_multilabel_model(multilabel_run, tmp_path, capsys):
    scene = write_geotiff(tmp_path / "scene.tif", np.zeros((14, 40, 40), np.float32))
    assert main(["predict-scene", str(_checkpoint(multilabel_run)), str(scene)]) == 2
    err = capsys.readouterr().err
    assert "multi-label" in err and "predict-chips" in err


def test_export_refuses_a_multilabel_model(multilabel_run, tmp_path, capsys):
    assert main(["export", str(_checkpoint(multilabel_run)), "--out", str(tmp_path / "out")]) == 2
    assert "multi-label" in capsys.readouterr().err
