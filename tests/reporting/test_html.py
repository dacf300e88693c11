import re

import numpy as np
import pytest

from rs_metapeft.reporting import build_report
from rs_metapeft.reporting.figures import (
    accuracy_by_count_figure,
    gamma_figure,
    read_csv_log,
    training_curves_figure,
)
from rs_metapeft.reporting.html import render_html
from rs_metapeft.reporting.runs import load_report, regenerate_report
from rs_metapeft.reporting.tables import write_report


@pytest.fixture
def report():
    confusion = np.array([[8, 2, 0], [1, 3, 1], [0, 2, 1]])
    rep = build_report(confusion, ["Forest", "River", "Highway"], [150, 40, 5])
    rep["gamma"] = {"0": {"q": 1.2, "adaptformer": 0.4}, "1": {"q": 0.9, "fc1": 1.1}}
    rep["trainable_parameters"] = 4321
    rep["fit_wall_time_s"] = 7.5
    return rep


def test_html_is_self_contained_with_tables_and_figures(report, tmp_path):
    (tmp_path / "metrics.csv").write_text(
        "epoch,step,train/loss,val/acc\n0,0,2.0,\n0,1,1.5,\n0,1,,0.4\n")
    write_report(report, tmp_path)
    html = (tmp_path / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4
    assert not re.search(r"(src|href)=\"(http|/|\.)", html)  # nothing outside the file
    for name, group in (("Forest", "many"), ("River", "medium"), ("Highway", "few")):
        assert re.search(rf"{name}</td><td class='name'><span class='group'[^>]*>{group}<", html)
    assert "<td>80.0</td>" in html  # Forest accuracy 8/10
    assert "4,321 trainable parameters" in html and "fit took 7.5 s" in html
    assert f"<td>{100 * report['macro_f1']:.1f}</td>" in html


def test_html_without_logs_or_gamma_leaves_those_figures_out(report):
    report.pop("gamma")
    assert render_html(report, []).count("data:image/png") == 2


def test_accuracy_figure_orders_classes_by_training_count(report):
    report["per_class"].reverse()
    fig = accuracy_by_count_figure(report)
    labels = [t.get_text().split("\n")[0] for t in fig.axes[0].get_xticklabels()]
    assert labels == ["Forest", "River", "Highway"]
    colours = [tuple(p.get_facecolor()[:3]) for p in fig.axes[0].patches]
    assert len(set(colours)) == 3  # one colour per group


def test_gamma_heatmap_is_layers_by_positions(report):
    fig = gamma_figure(report)
    image = np.ma.filled(fig.axes[0].images[0].get_array(), np.nan)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["q", "fc1", "adaptformer"]
    assert image.shape == (2, 3)
    # the colour is log2(gamma): the one gamma scale, centred at gamma = 1
    assert 2 ** image[0, 2] == pytest.approx(0.4) and 2 ** image[1, 1] == pytest.approx(1.1)
    assert np.isnan(image[1, 2])  # no module at layer 1, adaptformer
    norm = fig.axes[0].images[0].norm
    assert norm(0.0) == pytest.approx(0.5) and norm.vmax == -norm.vmin == 2
    assert gamma_figure({"gamma": {}}) is None


def test_small_changes_of_gamma_stay_pale():
    """4 % is not on/off: the colours span at least x0.5 .. x2 around the initial value."""
    fig = gamma_figure({"gamma": {"0": {"q": 0.96, "v": 1.04}}})
    image = fig.axes[0].images[0]
    levels = [float(image.norm(v)) for v in np.ma.filled(image.get_array(), np.nan)[0]]
    assert all(abs(level - 0.5) < 0.04 for level in levels)


def test_training_curves_read_the_csv_log(tmp_path):
    (tmp_path / "metrics.csv").write_text("epoch,step,train/loss\n0,0,2.0\n0,5,1.0\n")
    rows = read_csv_log(tmp_path / "metrics.csv")
    fig = training_curves_figure(rows)
    (line,) = fig.axes[0].lines
    assert list(line.get_xdata()) == [0.0, 5.0] and list(line.get_ydata()) == [2.0, 1.0]
    assert training_curves_figure([]) is None
    assert read_csv_log(tmp_path / "missing.csv") == []


def test_regenerate_refuses_a_file_that_is_not_a_report(tmp_path):
    (tmp_path / "report.json").write_text('{"overall_accuracy": 1}')
    with pytest.raises(ValueError, match="lacks class_mean_accuracy"):
        regenerate_report(tmp_path)


def test_regenerate_rewrites_from_json(report, tmp_path):
    write_report(report, tmp_path)
    (tmp_path / "report.html").unlink()
    paths = regenerate_report(tmp_path)
    assert all(p.is_file() for p in paths)
    assert load_report(tmp_path)["overall_accuracy"] == report["overall_accuracy"]


def test_run_identity_heads_the_html_and_markdown(report):
    from rs_metapeft.reporting.tables import format_report

    report["run"] = {"recipe": "demo (shipped)", "data": "SyntheticEuroSATDataModule at data/s2",
                     "bands": ["B02", "B03"], "classes": 3, "backbone": "vit_tiny (64 px)",
                     "weights": "random init", "method": "PEFT on q; MetaPEFT on",
                     "date": "2026-11-29T10:00:00+00:00", "version": "0.1.0 (commit abc1234)"}
    html = render_html(report, [])
    top = html.split("<h1>Tail-class report</h1>", 1)[1].split("<table>", 1)[0]
    for words in ("demo (shipped)", "at data/s2", "2: B02, B03", "random init",
                  "2026-11-29T10:00:00+00:00", "0.1.0 (commit abc1234)"):
        assert words in top
    assert format_report(report).splitlines()[2].startswith(
        "Run: recipe demo (shipped); data SyntheticEuroSATDataModule at data/s2; bands 2 "
        "(B02, B03)")


def test_short_runs_say_what_their_curves_can_show(report, tmp_path):
    from rs_metapeft.reporting.figures import curves_note

    report["training"] = {"steps": 3, "epochs": 1, "log_every_n_steps": 5}
    assert "No training-loss curve: the run took 3 steps and logs the loss every 5" in render_html(
        report, [{"step": "2", "val/acc": "0.5"}])
    rows = [{"step": str(s), "train/loss": str(1.0 / (s + 1))} for s in range(3)]
    assert curves_note(rows, {"steps": 3, "log_every_n_steps": 1}) == (
        "The training loss has 3 points: logged every 1 steps (trainer.log_every_n_steps) over 3 "
        "steps.")
    fig = training_curves_figure(rows + [{"step": "2", "val/acc": "0.5"}])
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["training loss (3 points)", "validation accuracy (1 point)"]
    assert fig.axes[1].texts[0].get_text() == "0.5"  # a single point says its value


def test_the_accuracy_labels_stay_below_the_title(report):
    for row in report["per_class"]:
        row["accuracy"] = 1.0
    fig = accuracy_by_count_figure(report)
    ax = fig.axes[0]
    assert ax.get_ylim()[1] > 100 + 5  # room for the "100" labels under the title
    assert all(t.get_position()[1] < ax.get_ylim()[1] for t in ax.texts)
