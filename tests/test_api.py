import doctest

import pytest

import rs_metapeft.api as api
from rs_metapeft.bands import BandMismatchError
from rs_metapeft.inference import CheckpointMismatchError


def test_api_examples_run_offline_in_order(tmp_path, monkeypatch):
    """The docstring examples of the API are one offline notebook: fit, then use its run."""
    monkeypatch.chdir(tmp_path)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    shared = {**vars(api)}
    names = ["load_recipe", "fit", "load_model", "evaluate", "predict"]
    for name in names:
        (test,) = finder.find(getattr(api, name), name, globs=shared)
        test.globs = shared  # one namespace: later examples use the fit example's run
        assert test.examples, f"{name} has no example"
        runner.run(test, clear_globs=False)
    result = runner.summarize(verbose=False)
    assert result.failed == 0
    assert result.attempted >= 15


def test_evaluate_refuses_other_classes(trained_run, tiny_s2_root, tmp_path):
    recipe = api.load_recipe("demo")
    recipe["data"]["init_args"].update(root=str(tmp_path / "other"), num_classes=3,
                                        max_per_class=6, val_per_class=1, test_per_class=1,
                                        image_size=32)
    missing = r"classes .*missing from the data: \['Highway'\]"
    with pytest.raises(CheckpointMismatchError, match=missing):
        api.evaluate(trained_run, recipe, output=tmp_path / "eval", verbose=False)


def test_evaluate_refuses_other_bands(trained_run, tiny_s2_root, tmp_path):
    recipe = api.load_recipe("demo")
    recipe["data"]["init_args"].update(root=str(tiny_s2_root), num_classes=4,
                                        bands=["B04", "B03", "B02"],
                                        max_per_class=20, val_per_class=2, test_per_class=3,
                                        image_size=32, synthetic_imbalance_ratio=10)
    with pytest.raises(BandMismatchError, match=r"missing from the data: \['B01'"):
        api.evaluate(trained_run, recipe, output=tmp_path / "eval", verbose=False)


def test_evaluate_unknown_data_key_names_it(trained_run, tmp_path):
    recipe = api.load_recipe("demo")
    recipe["data"]["init_args"]["batchsize"] = 3
    with pytest.raises(ValueError, match="Option 'batchsize' is not accepted"):
        api.evaluate(trained_run, recipe, output=tmp_path / "eval", verbose=False)


def test_evaluate_keeps_an_earlier_report(trained_run, tmp_path):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "report.json").write_text("{}")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        api.evaluate(trained_run, "demo", output=out, verbose=False)
    assert (out / "report.json").read_text() == "{}"


def test_predict_tensor_checks_band_count(trained_run):
    import torch

    with pytest.raises(ValueError, match="13"):
        api.predict(trained_run, torch.zeros(1, 3, 32, 32))


def test_load_model_reads_an_export_and_reproduces_the_checkpoint_logits(trained_run, tmp_path):
    import torch

    from rs_metapeft.api import load_model
    from rs_metapeft.cli import main

    (ckpt,) = trained_run.rglob("*.ckpt")
    assert main(["export", str(ckpt), "--out", str(tmp_path / "export")]) == 0
    from_ckpt = load_model(trained_run)
    from_export = load_model(tmp_path / "export")
    assert from_export.class_names == from_ckpt.class_names
    assert from_export.group_counts == from_ckpt.group_counts and any(from_export.group_counts)
    x = torch.rand(2, len(from_ckpt.model.bands), 32, 32) * 3000
    with torch.no_grad():
        assert torch.allclose(from_export(x), from_ckpt(x), atol=1e-5)
