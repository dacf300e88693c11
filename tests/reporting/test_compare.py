import json

import pytest

from rs_metapeft.reporting.compare import compare_runs, format_comparison, write_comparison


def _run(folder, overall, few, params, seconds, off=None):
    folder.mkdir(parents=True)
    report = {"overall_accuracy": overall, "class_mean_accuracy": 0.5, "macro_f1": 0.4,
              "group_accuracy": {"many": 0.9, "medium": 0.6, "few": few}, "per_class": [],
              "trainable_parameters": params, "fit_wall_time_s": seconds}
    if off is not None:
        report["switched_off"] = off
    (folder / "report.json").write_text(json.dumps(report))
    return folder


def test_rows_and_labels_tell_runs_apart(tmp_path):
    a = _run(tmp_path / "peft" / "lightning_logs" / "version_0", 0.8, 0.1, 1000, 10.0)
    off = [{"layer": 3, "position": "fc2", "scale": 0.001, "initial": 1.0},
           {"layer": 5, "position": "q", "scale": 0.01, "initial": 1.0}]
    b = _run(tmp_path / "meta" / "lightning_logs" / "version_0", 0.82, None, 1100, 11.5, off)
    rows = compare_runs([a, b / "report.json"])
    assert [r["run"] for r in rows] == ["peft/lightning_logs/version_0",
                                       "meta/lightning_logs/version_0"]
    assert rows[1]["overall"] == 0.82 and rows[1]["few"] is None
    assert rows[0]["switched_off"] is None and rows[1]["switched_off"] == 2
    table = format_comparison(rows)
    expected = ("| peft/lightning_logs/version_0 | n/a | 80.0 | 50.0 | 40.0 | 90.0 | 60.0 | 10.0 "
                "| 1,000 | 10.0 | n/a |")
    assert expected in table
    assert "| n/a | 1,100 | 11.5 | 2 |" in table
    md, csv = write_comparison(rows, tmp_path / "out" / "table.md")
    assert md.name == "table.md" and csv.name == "table.csv"
    # run, MetaPEFT (unknown here), overall ...
    assert csv.read_text().splitlines()[1].startswith("peft/lightning_logs/version_0,,0.8,")


def test_missing_run_says_how_reports_are_made(tmp_path):
    with pytest.raises(FileNotFoundError, match="rs-metapeft fit"):
        compare_runs([tmp_path])


def test_meta_on_off_and_different_data_or_bands_are_said(tmp_path):
    def run(name, enabled, data, bands, classes=("Forest", "River")):
        folder = _run(tmp_path / name, 0.8, 0.1, 1000, 10.0)
        report = json.loads((folder / "report.json").read_text())
        report["meta"] = {"enabled": enabled}
        report["run"] = {"data": data, "bands": bands}
        report["per_class"] = [{"class": c} for c in classes]
        (folder / "report.json").write_text(json.dumps(report))
        return folder

    a = run("peft", False, "EuroSAT at data/eurosat", ["B04", "B03", "B02"])
    b = run("meta", True, "EuroSAT at data/eurosat", ["B04", "B03", "B02"])
    rows = compare_runs([a, b])
    assert [r["meta"] for r in rows] == ["off", "on"]
    table = format_comparison(rows)
    assert "| run | MetaPEFT |" in table and "| peft | off |" in table
    assert "Note" not in table  # like for like
    c = run("sar", True, "SyntheticSAR at data/demo_s1", ["VV", "VH"], ("Forest", "Lake", "Sea"))
    notes = format_comparison(compare_runs([a, c]))
    assert ("> **Note:** These runs used different data: peft: EuroSAT at data/eurosat; "
            "sar: SyntheticSAR at data/demo_s1.") in notes
    assert "different bands: peft: B04 B03 B02; sar: VV VH." in notes
    assert "different classes: peft: 2 (1 not in every run); sar: 3 (2 not in every run)." in notes
