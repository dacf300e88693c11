"""The label-tail report: metrics against their definitions, files, report and compare commands."""

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, f1_score

from rs_metapeft.cli import main
from rs_metapeft.reporting import write_report
from rs_metapeft.reporting.compare import compare_runs
from rs_metapeft.reporting.multilabel import build_multilabel_report, top_pairs
from rs_metapeft.reporting.tables import format_console_summary

NAMES = ["forest", "crops", "water", "wetland"]
TRAIN = [300, 60, 25, 3]  # many, medium, medium, few (thresholds 100 / 20)


def _data(seed=0, n=40):
    g = torch.Generator().manual_seed(seed)
    targets = (torch.rand(n, 4, generator=g) < torch.tensor([0.6, 0.3, 0.2, 0.1])).long()
    targets[0] = 1  # every label has a positive
    scores = (0.35 * targets + 0.65 * torch.rand(n, 4, generator=g)).clamp(0, 1)
    return scores, targets


def test_metrics_match_their_definitions():
    scores, targets = _data()
    thresholds = torch.tensor([0.5, 0.4, 0.6, 0.3])
    report = build_multilabel_report(scores, targets, thresholds, NAMES, TRAIN, 400,
                                     many_threshold=100, few_threshold=20)
    y, s = targets.numpy(), scores.numpy()
    predicted = (s >= thresholds.numpy()).astype(int)
    ap = [average_precision_score(y[:, k], s[:, k]) for k in range(4)]
    assert report["macro_map"] == pytest.approx(np.mean(ap), abs=1e-5)
    assert report["micro_map"] == pytest.approx(average_precision_score(y.ravel(), s.ravel()),
                                                abs=1e-5)
    assert report["macro_f1"] == pytest.approx(f1_score(y, predicted, average="macro"), abs=1e-5)
    assert report["micro_f1"] == pytest.approx(f1_score(y, predicted, average="micro"), abs=1e-5)
    rows = {r["class"]: r for r in report["per_class"]}
    assert [rows[n]["group"] for n in NAMES] == ["many", "medium", "medium", "few"]
    assert rows["wetland"]["train_frequency"] == pytest.approx(3 / 400)
    assert report["group_map"]["few"] == pytest.approx(ap[3], abs=1e-5)
    assert report["group_map"]["medium"] == pytest.approx((ap[1] + ap[2]) / 2, abs=1e-5)
    assert rows["crops"]["test_count"] == int(y[:, 1].sum())
    assert report["co_occurrence"]["matrix"] == (y.T @ y).tolist()


def test_a_label_without_test_positives_is_left_out_of_the_means():
    scores, targets = _data()
    targets[:, 3] = 0
    report = build_multilabel_report(scores, targets, torch.full((4,), 0.5), NAMES, TRAIN)
    assert report["per_class"][3]["ap"] is None and report["per_class"][3]["f1"] is None
    ap = [average_precision_score(targets[:, k], scores[:, k]) for k in range(3)]
    assert report["macro_map"] == pytest.approx(np.mean(ap), abs=1e-5)
    with pytest.raises(ValueError, match="do not agree"):
        build_multilabel_report(scores, targets, torch.full((4,), 0.5), NAMES[:3], TRAIN)


def test_top_pairs_say_how_often_one_label_implies_the_other():
    targets = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0]])
    report = build_multilabel_report(targets.float(), targets, torch.full((4,), 0.5), NAMES,
                                     TRAIN)
    first, second = top_pairs(report)
    assert (first["a"], first["b"], first["count"]) == ("forest", "crops", 2)
    assert first["p_b_given_a"] == pytest.approx(2 / 3)
    assert first["p_a_given_b"] == pytest.approx(2 / 3)
    assert (second["a"], second["b"], second["count"]) == ("forest", "water", 1)


def _written(folder, seed):
    scores, targets = _data(seed)
    report = build_multilabel_report(scores, targets, torch.full((4,), 0.5), NAMES, TRAIN, 400)
    report["gamma"] = {"0": {"q": 1.2, "v": 0.4}, "1": {"q": 0.9, "v": 1.1}}
    write_report(report, folder)
    return report


def test_report_files_and_compare_across_multilabel_runs(tmp_path, capsys):
    a, b = _written(tmp_path / "meta", 0), _written(tmp_path / "peft", 1)
    md = (tmp_path / "meta" / "report.md").read_text()
    assert "# Label-tail report" in md and "| wetland | few | 3 | 0.8 |" in md
    assert "## Label co-occurrence (test split)" in md and "## Learned gamma" in md
    html = (tmp_path / "meta" / "report.html").read_text()
    assert html.count("<img") >= 3  # AP by frequency, co-occurrence, gamma
    assert "class='co-occurrence'" in html
    assert main(["report", str(tmp_path / "meta")]) == 0
    rows = compare_runs([tmp_path / "meta", tmp_path / "peft"])
    assert [r["run"] for r in rows] == ["meta", "peft"]
    assert [r["macro_map"] for r in rows] == [a["macro_map"], b["macro_map"]]
    assert rows[0]["few"] == a["group_map"]["few"]
    assert main(["compare", str(tmp_path / "meta"), str(tmp_path / "peft"),
                 "-o", str(tmp_path / "cmp")]) == 0
    assert "| run | macro mAP % |" in (tmp_path / "cmp.md").read_text()
    assert (tmp_path / "cmp.csv").read_text().startswith("run,macro_map,micro_map")


def test_compare_refuses_single_and_multi_label_runs_together(tmp_path, capsys):
    from rs_metapeft.reporting import build_report

    write_report(build_report(np.eye(4) * 3, NAMES, TRAIN), tmp_path / "single")
    _written(tmp_path / "multi", 0)
    assert main(["compare", str(tmp_path / "single"), str(tmp_path / "multi")]) == 2
    assert "cannot be compared with single-label" in capsys.readouterr().err


def test_the_trained_multilabel_run_has_the_label_tail_report(multilabel_run):
    report = json.loads((multilabel_run / "report.json").read_text())
    assert {r["group"] for r in report["per_class"]} <= {"many", "medium", "few"}
    counts = [r["train_count"] for r in report["per_class"]]
    assert sum(counts) >= 12  # label frequencies: a sample counts for each of its labels
    assert report["gamma"] and (multilabel_run / "gamma_heatmap.png").is_file()
    assert (multilabel_run / "report.html").read_text().count("<img") >= 3
    summary = format_console_summary(report)  # what the fit printed at its end
    assert "macro mAP" in summary and "mAP by label group: many" in summary
