"""A quiet, honest console: each call prints what the user needs and says where things go."""

import re
import sys
import warnings

import pytest
import yaml

from rs_metapeft.cli import main
from rs_metapeft.console import QUIET_WARNINGS, quiet_console
from rs_metapeft.recipes import list_recipes, recipe_path, recipe_summary

from .conftest import tiny_demo_recipe

#: Lines a fit used to print that tell the user nothing (issue 16, item 6).
NOISE = ("args parameter is intended to run from within Python", "Tip:", "litlogger", "LeafSpec",
         "FLOPs", "logging interval", "Seed set to", "GPU available", "TPU available",
         "will override existing callbacks", "to estimate number of stepping batches")


def _tiny_demo(tmp_path, root):
    """The demo recipe at CPU size, logging less often than it has batches (as short runs do)."""
    return tiny_demo_recipe(tmp_path, root, run_folder="runs", **{
        "trainer.accelerator": "cpu", "trainer.log_every_n_steps": 50})


def test_a_tiny_fit_prints_its_header_and_summary_and_no_noise(tiny_s2_root, tmp_path, capfd,
                                                                monkeypatch):
    recipe = _tiny_demo(tmp_path, tiny_s2_root)
    argv = ["fit", "--config", str(recipe)]
    monkeypatch.setattr(sys, "argv", ["rs-metapeft", *argv])  # as the console script sees it
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")  # every warning shows, except those named as noise
        assert main(argv) == 0
    out, err = capfd.readouterr()
    console = out + err + "\n".join(f"{w.filename}:{w.lineno}: {w.message}" for w in seen)
    for noise in NOISE:
        assert noise not in console, noise
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert lines[0] == f"rs-metapeft fit: recipe {recipe.name}"
    assert re.match(rf"  data: +{re.escape(str(tiny_s2_root))} \(synthetic\): "
                    r"SyntheticEuroSATDataModule; 13 bands", lines[1])
    assert re.match(r"  model: +vit_tiny_patch16_224, random init; [\d.]+ K parameters, "
                    r"[\d.]+ K trainable \([\d.]+ %\)", lines[2])
    assert lines[3].startswith("  run:   runs/lightning_logs/version_0 (checkpoints, logs, "
                               "report) on cpu")
    assert any(line.startswith("Test (") and "class-mean" in line for line in lines)
    assert "Report: runs/lightning_logs/version_0/report.html" in out
    assert len(lines) <= 12, "\n".join(lines)


def test_the_noise_filters_are_narrow():
    """Each filter names its message, category and module: the same text elsewhere still shows."""
    quiet_console()
    for message, category, module, why in QUIET_WARNINGS:
        assert message and module.endswith("$") and why
        assert any(f[1] is not None and f[1].pattern == message and f[2] is category
                   and f[3] is not None and f[3].pattern == module for f in warnings.filters)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_console()
        warnings.warn("The number of training batches (4) is smaller than the logging interval",
                      UserWarning, stacklevel=1)  # from this module, not Lightning's loop
    assert len(seen) == 1


def test_fit_help_is_short_and_names_only_real_options(capsys):
    with pytest.raises(SystemExit) as done:
        main(["fit", "--help"])
    assert done.value.code == 0
    short = capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["fit", "--help-all"])
    full = capsys.readouterr().out
    # every model key has a line (TorchGeo weights, own bands and multi-label added some)
    assert len(short.splitlines()) < 130 < 700 < len(full.splitlines())
    assert "Example:\n  rs-metapeft fit --config eurosat_ms_lt" in short  # examples keep lines
    for option in re.findall(r"^  (--[\w.]+)", short, re.MULTILINE):
        if not option.endswith((".KEY", ".class_path")) and option != "--help-all":
            assert option in full, option
    for key in ("--model.backbone", "--model.stem", "--trainer.max_epochs", "--help-all",
                "--checkpoint.every_n_train_steps", "hypergradient", "--data.help CLASS"):
        assert key in short
    assert ":mod:" not in short and "``" not in short


def test_compare_help_says_its_default_once(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    assert capsys.readouterr().out.count("default:") == 1


def test_demo_help_lists_its_demos_folders_and_options(capsys):
    assert main(["demo", "--help"]) == 0
    out = capsys.readouterr().out
    for words in ("multispectral", "sar", "data/demo_s2", "data/demo_s1", "runs/demo/",
                  "--trainer.max_epochs", "--data.init_args.root", "Example:"):
        assert words in out


def test_recipes_list_says_whole_sentences(capsys):
    assert main(["recipes", "list"]) == 0
    listed = " ".join(capsys.readouterr().out.split())
    for name in list_recipes():
        summary = recipe_summary(name)
        assert summary.endswith((".", ".`")), summary
        assert " ".join(summary.split()) in listed
    assert recipe_summary("demo").endswith("read through torchgeo.datasets.EuroSAT.")


def test_stats_says_where_the_data_is(tmp_path, capsys):
    root = tmp_path / "demo_s2"
    recipe = yaml.safe_load(recipe_path("demo").read_text())
    recipe["data"]["init_args"].update(
        root=str(root), num_classes=3, max_per_class=4, val_per_class=1, test_per_class=1,
        image_size=16, batch_size=4, meta_batch_size=2)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["stats", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"Generating the synthetic data set in {root}" in out
    assert f"Data folder: {root}" in out
    assert main(["stats", "--config", str(path)]) == 0  # the second time: found, not written
    assert "Generating" not in capsys.readouterr().out


def test_the_packages_own_warnings_are_one_line_each(monkeypatch):
    import io

    from rs_metapeft import console

    monkeypatch.setattr(console, "_SHOW_WARNING", lambda message, category, filename, lineno,
                        file=None, line=None: file.write(
                            warnings.formatwarning(message, category, filename, lineno, line)))

    stream = io.StringIO()
    console._show_warning(UserWarning("data.num_workers 8 is more than the 2 CPU cores"),
                          UserWarning, console.__file__, 10, stream, "warnings.warn(...)")
    assert stream.getvalue() == "Warning: data.num_workers 8 is more than the 2 CPU cores\n"
    stream = io.StringIO()
    console._show_warning(UserWarning("elsewhere"), UserWarning, "/elsewhere/mod.py", 3, stream,
                          "x = 1")
    assert stream.getvalue().startswith("/elsewhere/mod.py:3: UserWarning: elsewhere")
