import doctest

import pytest

import rs_metapeft.api as api
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
    with pytest.raises(CheckpointMismatchError, match=r"missing from the data: \['B01'"):
        api.evaluate(trained_run, recipe, output=tmp_path / "eval", verbose=False)


def test_evaluate_unknown_data_key_names_it(trained_run, tmp_path):
    recipe = api.load_recipe("demo")
    recipe["data"]["init_args"]["batchsize"] = 3
    with pytest.raises(Exception, match="batchsize"):
        api.evaluate(trained_run, recipe, output=tmp_path / "eval", verbose=False)


def test_predict_tensor_checks_band_count(trained_run):
    import torch

    with pytest.raises(ValueError, match="13"):
        api.predict(trained_run, torch.zeros(1, 3, 32, 32))
