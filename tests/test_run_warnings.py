"""Runs that do what the recipe says, or say what they did instead (warnings, report notes)."""

import csv
from types import SimpleNamespace

import numpy as np
import pytest

from rs_metapeft.data import GeoTiffFolderDataModule
from rs_metapeft.data.longtail import BALANCED_RATIO, assign_groups, longtail_targets
from rs_metapeft.reporting.metrics import build_report
from rs_metapeft.reporting.tables import format_report
from rs_metapeft.tasks import MetaPEFTTask
from tests.conftest import TINY_VIT
from tests.data.fakes import make_fake_geotiff_folder


def test_equal_class_counts_are_one_balanced_group_and_the_report_says_so():
    assert assign_groups([40, 40, 40]) == ["balanced"] * 3
    assert assign_groups([40, 40, 40], rule="quantile") == ["many", "medium", "few"]  # as asked
    report = build_report(np.eye(3) * 5, ["a", "b", "c"], [40, 40, 38])
    assert report["groups_rule_used"] == "balanced"
    assert set(report["group_accuracy"].values()) == {None}  # no head, no tail to speak of
    assert f"at most {BALANCED_RATIO} times" in format_report(report)


@pytest.mark.parametrize(("counts", "says"), [
    ([300, 50, 5], "auto rule -> thresholds: many > 100, few < 20 training images (many 300, "
                   "medium 50, few 5 training images)"),
    ([300, 98, 54], "auto rule -> thirds by training count (many > 100 and few < 20 would leave "
                    "a group empty): many 300, medium 98, few 54 training images"),
])
def test_the_report_names_the_group_thresholds_it_used(counts, says):
    report = build_report(np.eye(3) * 5, ["a", "b", "c"], counts)
    assert report["groups_description"] == says
    assert f"Groups by training count: {says}." in format_report(report)


def test_warmup_longer_than_the_run_warns_and_heads_the_report():
    task = MetaPEFTTask(["B02", "B03", "B04"], 3, img_size=32, patch_size=8,
                        backbone_kwargs=TINY_VIT, peft={"positions": ["q"]},
                        meta={"warmup_steps": 50})
    task._trainer = SimpleNamespace(estimated_stepping_batches=20)  # a 20-step run
    with pytest.warns(UserWarning, match="warmup_steps is 50 but the run has 20 training steps"):
        task.configure_optimizers()
    report = build_report(np.eye(3), ["a", "b", "c"], [30, 20, 10])
    report["warnings"] = task.run_warnings
    assert format_report(report).splitlines()[2].startswith(
        "> **Warning:** model.meta.warmup_steps is 50 but the run has 20 training steps, so no "
        "outer step runs")


def test_num_workers_above_the_cores_is_clamped_with_one_warning(tmp_path):
    root = make_fake_geotiff_folder(tmp_path, per_class=8)
    with pytest.warns(UserWarning, match="data.num_workers 4096 is more than the") as seen:
        dm = GeoTiffFolderDataModule(root=str(root), num_workers=4096)
    assert len(seen) == 1 and 1 <= dm.num_workers < 4096
    dm.setup("fit")
    assert dm.train_dataloader().num_workers == dm.num_workers


def test_achieved_imbalance_ratio_is_said_with_the_reason(tmp_path):
    root = make_fake_geotiff_folder(tmp_path, per_class=[8, 40, 40])  # the head class is small
    dm = GeoTiffFolderDataModule(root=str(root), imbalance_ratio=8, batch_size=4)
    with pytest.warns(UserWarning, match=r"data.imbalance_ratio 8 was asked for but the training "
                                         r"subset has \d+\.\d: classes crop \(\d+ < \d+\)"):
        dm.setup("fit")
    assert dm.run_warnings and "crop" in dm.run_warnings[0]
    assert longtail_targets([28, 28, 28], 8) == [28, 10, 4]  # what the profile asks for


def test_csv_labels_without_a_folder_and_tiny_classes_are_named(tmp_path):
    root = make_fake_geotiff_folder(tmp_path, per_class=[8, 8, 8], with_csv=True)
    with open(root / "labels.csv", "a", newline="") as f:
        csv.writer(f).writerows([["water/water_0.tif", "lake", "train"],
                                 ["water/water_1.tif", "lake", "val"]])
    with pytest.warns(UserWarning) as seen:
        GeoTiffFolderDataModule(root=str(root), csv_file="labels.csv")
    messages = [str(w.message) for w in seen]
    assert any("labels ['lake'] of the CSV are no class folder" in m and "data.classes" in m
               for m in messages)
    assert any("classes lake (2)" in m and "fewer than 5 chips" in m for m in messages)
