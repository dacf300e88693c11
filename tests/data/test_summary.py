import json

import yaml

from rs_metapeft.cli import main
from rs_metapeft.data.summary import datamodule_from_recipe, dataset_summary
from tests.data.fakes import make_fake_sar_ships


def _recipe(tmp_path, root):
    recipe = {
        "model": {"groups": {"rule": "thresholds", "many_threshold": 7, "few_threshold": 3}},
        "data": {
            "class_path": "rs_metapeft.data.SARShipChipsDataModule",
            "init_args": {"root": str(root), "bands": ["VV"], "batch_size": 4,
                          "preprocessing": {"clip_db": [-40, 10]},
                          "split_files": {"train": "train.txt", "val": "test.txt"},
                          "check_test_split": False},
        },
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_stats_command_prints_and_writes_json(tmp_path, capsys):
    root = make_fake_sar_ships(tmp_path / "ships", per_class=[12, 4, 2], list_file=True)
    out = tmp_path / "stats.json"
    assert main(["stats", "--config", str(_recipe(tmp_path, root)), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Imbalance ratio (train): 4.5" in text and "VV" in text
    summary = json.loads(out.read_text())
    assert summary["counts"]["train"] == [9, 3, 2] and summary["counts"]["val"] == [3, 1, 0]
    assert summary["groups"] == ["many", "medium", "few"]
    assert summary["band_statistics"]["p02"][0] < summary["band_statistics"]["p98"][0]
    assert any("test: not available" in n for n in summary["notes"])


def test_summary_of_a_recipe_datamodule(tmp_path):
    root = make_fake_sar_ships(tmp_path / "ships", per_class=[4, 4, 4], list_file=True)
    dm, _ = datamodule_from_recipe(_recipe(tmp_path, root))
    summary = dataset_summary(dm, "quantile", splits=())
    assert summary["imbalance_ratio"] == 1.0 and len(summary["groups"]) == 3


def test_stats_names_a_recipe_without_data_and_a_bad_key(tmp_path, capsys):
    """``stats`` builds its datamodule as fit does (build_datamodule): one-line errors."""
    empty = tmp_path / "empty.yaml"
    empty.write_text("model: {}\n")
    assert main(["stats", "--config", str(empty)]) == 2
    assert f"recipe {empty} has no data section with a class_path" in capsys.readouterr().err
    bad = _recipe(tmp_path, tmp_path / "ships")
    recipe = yaml.safe_load(bad.read_text())
    recipe["data"]["init_args"]["batchsize"] = 3
    bad.write_text(yaml.safe_dump(recipe))
    assert main(["stats", "--config", str(bad)]) == 2
    assert "Option 'batchsize' is not accepted" in capsys.readouterr().err
