"""The "Module selection" part of reports: effective scales, switched-off modules, gamma history."""

import json
import re

import numpy as np
import pytest

from rs_metapeft.reporting import build_report, format_report
from rs_metapeft.reporting.compare import compare_runs
from rs_metapeft.reporting.figures import effective_scale_figure, gamma_history_figure
from rs_metapeft.reporting.gamma_plots import plot_effective_scale_heatmap, save_gamma_plots
from rs_metapeft.reporting.html import render_html
from rs_metapeft.reporting.runs import regenerate_report
from rs_metapeft.reporting.selection import module_selection
from rs_metapeft.reporting.tables import write_report

# Layer 0: q at its initial scale (alpha 0.25, not 1), v doubled; layer 1: q halved, fc2 off.
SCALES = {"0": {"q": 0.25, "v": 2.0}, "1": {"q": 0.5, "fc2": 0.001}}
INITIAL = {"0": {"q": 0.25, "v": 1.0}, "1": {"q": 1.0, "fc2": 1.0}}
OFF = [{"layer": 1, "position": "fc2", "scale": 0.001, "initial": 1.0}]


@pytest.fixture
def report():
    confusion = np.array([[8, 2, 0], [1, 3, 1], [0, 2, 1]])
    rep = build_report(confusion, ["Forest", "River", "Highway"], [150, 40, 5])
    rep["gamma"] = {"0": {"q": 1.0, "v": 2.0}, "1": {"q": 0.5, "fc2": 0.001}}
    rep["effective_scale"] = json.loads(json.dumps(SCALES))
    rep["initial_scale"] = json.loads(json.dumps(INITIAL))
    rep["switched_off"] = json.loads(json.dumps(OFF))
    rep["switch_off_threshold"] = 0.05
    rep["gamma_history"] = [[10, {"0": {"q": 1.0, "v": 1.5}, "1": {"q": 0.8, "fc2": 0.2}}],
                            [20, {"0": {"q": 1.0, "v": 2.0}, "1": {"q": 0.5, "fc2": 0.001}}]]
    rep["meta"] = {"enabled": True, "outer_steps": 2, "skipped_outer_steps": 0}
    return rep


def _cells(fig):
    ax = fig.axes[0]
    positions = [t.get_text() for t in ax.get_xticklabels()]
    return ax, positions, np.ma.filled(ax.images[0].get_array().astype(float), np.nan)


# -- heatmap ----------------------------------------------------------------------------------
def test_heatmap_is_centred_at_each_modules_initial_scale():
    fig = plot_effective_scale_heatmap(SCALES, INITIAL)
    ax, positions, grid = _cells(fig)
    image = ax.images[0]
    assert positions == ["q", "v", "fc2"]
    q, v, fc2 = (positions.index(p) for p in ("q", "v", "fc2"))
    # q of layer 0 sits at its own initial scale 0.25 (not at 1): the centre of the map.
    assert image.norm(grid[0, q]) == pytest.approx(0.5)
    assert image.cmap(image.norm(grid[0, q])) == pytest.approx(image.cmap(0.5))
    # x2 and x0.5 of the initial scale lie equally far on either side of the centre.
    above, below = image.norm(grid[0, v]) - 0.5, 0.5 - image.norm(grid[1, q])
    assert above > 0.05 and above == pytest.approx(below)
    assert np.isnan(grid[0, fc2])  # no module there
    ticks = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert {"\u00d70.5", "\u00d71 (initial)", "\u00d72"} <= set(ticks)
    assert "initial" in fig.axes[1].get_ylabel()


def test_heatmap_marks_switched_off_modules_and_annotates_scales():
    fig = plot_effective_scale_heatmap(SCALES, INITIAL)
    ax, positions, _ = _cells(fig)
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
             for t in ax.texts}
    fc2 = positions.index("fc2")
    assert texts[(1, fc2)].startswith("off")
    assert texts[(0, positions.index("v"))] == "2"
    assert sum(not t.startswith("off") and "off" not in t for t in texts.values()) == 3
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert len(hatched) == 1 and hatched[0].get_xy() == (fc2 - 0.5, 0.5)
    # a stricter threshold leaves it on
    fig = plot_effective_scale_heatmap(SCALES, INITIAL, threshold=0.0001)
    assert not any(p.get_hatch() for p in fig.axes[0].patches)


def test_heatmap_of_unchanged_modules_is_all_centre_colour():
    same = {0: {"q": 0.5, "v": 0.5}}
    fig = plot_effective_scale_heatmap(same, same, depth=2)
    ax, _, grid = _cells(fig)
    assert grid.shape == (2, 2) and np.all(grid[0] == 0) and np.all(np.isnan(grid[1]))
    assert ax.images[0].norm(0.0) == pytest.approx(0.5)


def test_save_gamma_plots_adds_effective_scale_only_when_given(tmp_path):
    gmap, history = {0: {"q": 1.0}}, [(5, {0: {"q": 1.0}})]
    paths = save_gamma_plots(gmap, history, tmp_path / "a", depth=1)
    assert [p.name for p in paths] == ["gamma_heatmap.png", "gamma_history.png"]
    assert not (tmp_path / "a" / "effective_scale.png").exists()
    paths = save_gamma_plots(gmap, history, tmp_path / "b", depth=2,
                             scales={0: {"q": 0.5}}, initial={0: {"q": 1.0}})
    assert [p.name for p in paths] == ["gamma_heatmap.png", "gamma_history.png",
                                       "effective_scale.png"]
    assert all(p.stat().st_size > 0 for p in paths)


def test_report_figures_read_json_keys(report):
    fig = effective_scale_figure(report)
    assert fig.axes[0].images[0].get_array().shape == (2, 3)
    history = gamma_history_figure(report)
    assert len(history.axes[0].lines) == 4
    assert list(history.axes[0].lines[0].get_xdata()) == [10, 20]
    for key in ("effective_scale", "gamma_history"):
        report.pop(key)
    assert effective_scale_figure(report) is None and gamma_history_figure(report) is None


def test_history_orders_layers_numerically():
    fig = gamma_history_figure({"gamma_history": [[1, {"10": {"q": 1.0}, "2": {"q": 1.0}}]]})
    assert [line.get_label() for line in fig.axes[0].lines] == ["L2 q", "L10 q"]


# -- report.md and report.html ----------------------------------------------------------------
def test_markdown_lists_switched_off_modules_and_effective_scales(report):
    md = format_report(report)
    section = md.split("## Module selection", 1)[1]
    assert "Switched off (1 of 4 modules below 5 % of their initial scale)" in section
    assert "| 1 | fc2 | 0.001 | 1 |" in section
    assert "initial scale in brackets" in section  # alphas differ
    assert "| 0 | 0.25 (0.25) | 2 (1) |  |" in section
    assert "| 1 | 0.5 (1) |  | 0.001 (1) off |" in section
    assert "2 outer steps (steps 10 to 20)" in section


def test_markdown_says_none_and_states_a_shared_initial_scale(report):
    report["effective_scale"] = {"0": {"q": 1.5, "v": 1.0}}
    report["initial_scale"] = {"0": {"q": 1.0, "v": 1.0}}
    report["switched_off"] = []
    md = format_report(report)
    assert "Switched off: none below 5 % of their initial scale." in md
    assert "initial scale 1 for every module" in md
    assert "| 0 | 1.5 | 1 |" in md
    report["switch_off_threshold"] = 0.1
    assert "none below 10 % of their initial scale" in format_report(report)


def test_switched_off_is_derived_when_the_list_is_missing(report):
    report.pop("switched_off")
    selection = module_selection(report)
    assert [(m["layer"], m["position"]) for m in selection.off] == [(1, "fc2")]
    report["switch_off_threshold"] = 0.6  # layer 1 q (0.5 of initial) is now off too
    assert [(m["layer"], m["position"]) for m in module_selection(report).off] == [
        (1, "q"), (1, "fc2")]


def test_html_has_module_selection_with_tables_and_figures(report):
    html = render_html(report, [])
    assert "<h2>Module selection</h2>" in html
    section = html.split("<h2>Module selection</h2>", 1)[1]
    assert "Switched off: 1 of 4 modules below 5 % of their initial scale." in section
    assert re.search(r"<tr><td>1</td><td class='name'>fc2</td><td>0.001</td><td>1</td></tr>",
                     section)
    assert "<td class='off'>0.001 (1) off</td>" in section
    gamma = html.split("<h2>Learned gamma</h2>", 1)[1].split("<h2>", 1)[0]
    assert 'alt="gamma heatmap"' in gamma and 'alt="gamma over training"' in gamma
    # confusion, accuracy by count, gamma heatmap and gamma history; the effective scales are
    # a table (a heatmap of them would repeat the gamma heatmap's colours)
    assert html.count("data:image/png;base64,") == 4


@pytest.mark.parametrize("missing", [
    ("effective_scale", "initial_scale", "switched_off", "switch_off_threshold", "gamma_history"),
    ("gamma_history",),
    ("initial_scale", "switch_off_threshold"),
])
def test_reports_tolerate_missing_keys(report, missing):
    for key in missing:
        report.pop(key)
    md, html = format_report(report), render_html(report, [])
    if "effective_scale" in missing:
        assert "Module selection" not in md and "Module selection" not in html
        assert html.count("data:image/png") == 3
    else:
        assert "## Module selection" in md and "<h2>Module selection</h2>" in html
        assert ("gamma over training" in html) == ("gamma_history" not in missing)
        assert "fc2" in md.split("## Module selection", 1)[1]


def test_reports_of_runs_without_modules_leave_the_section_out(report):
    report.update(effective_scale={}, initial_scale={}, switched_off=[], gamma_history=[])
    assert "Module selection" not in format_report(report)
    assert "Module selection" not in render_html(report, [])


def test_meta_off_is_said(report):
    report["meta"] = {"enabled": False}
    report.update(gamma_history=[], switched_off=[], effective_scale=INITIAL)
    md = format_report(report)
    assert "MetaPEFT was off" in md and "none below 5 %" in md


def test_written_report_round_trips_through_json(report, tmp_path):
    write_report(report, tmp_path)
    (tmp_path / "report.md").unlink()
    (tmp_path / "report.html").unlink()
    regenerate_report(tmp_path)
    assert "| 1 | fc2 | 0.001 | 1 |" in (tmp_path / "report.md").read_text()
    assert "<h2>Module selection</h2>" in (tmp_path / "report.html").read_text()
    assert compare_runs([tmp_path])[0]["switched_off"] == 1
