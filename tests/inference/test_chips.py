import csv
import shutil

import numpy as np
import pytest
import rasterio
import torch

from rs_metapeft.bands import BandMismatchError
from rs_metapeft.cli import main
from rs_metapeft.data.synthetic import EUROSAT_BASE_DIR
from rs_metapeft.inference import CheckpointMismatchError, check_matches, load_task, predict_chips


@pytest.fixture(scope="module")
def task(trained_run):
    return load_task(trained_run)


def test_csv_has_a_row_per_chip_with_probabilities(task, tiny_s2_root, tmp_path):
    folder = tiny_s2_root / EUROSAT_BASE_DIR
    out = predict_chips(task, folder, tmp_path / "p.csv", batch_size=7, progress=False)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(list(folder.rglob("*.tif")))
    for row in rows:
        probs = np.array([float(row[c]) for c in task.class_names])
        assert probs.sum() == pytest.approx(1, abs=1e-4)
        assert row["class"] == task.class_names[int(probs.argmax())]
        assert float(row["confidence"]) == pytest.approx(probs.max(), abs=1e-6)
        assert (folder / row["path"]).is_file()


def test_chip_with_other_band_count_is_named(task, tiny_s2_root, tmp_path):
    folder = tmp_path / "chips"
    shutil.copytree(tiny_s2_root / EUROSAT_BASE_DIR / "Forest", folder)
    with rasterio.open(folder / "odd.tif", "w", driver="GTiff", width=32, height=32, count=2,
                       dtype="float32") as dst:
        dst.write(np.zeros((2, 32, 32), np.float32))
    with pytest.raises(BandMismatchError, match=r"1 chip\(s\) differ: odd.tif \(2 bands\)"):
        predict_chips(task, folder, tmp_path / "p.csv", progress=False)
    assert not (tmp_path / "p.csv").exists()


def test_band_and_class_differences_are_spelled_out(task):
    check_matches(task, bands=["coastal", *task.model.bands[1:]])  # alias of B01: same band
    with pytest.raises(BandMismatchError, match=r"missing from the data: \['B10'\]"):
        check_matches(task, bands=[b for b in task.model.bands if b != "B10"])
    with pytest.raises(CheckpointMismatchError, match="different order"):
        check_matches(task, classes=list(reversed(task.class_names)))


def test_cli_predict_chips(trained_run, tiny_s2_root, tmp_path, capsys):
    folder = tiny_s2_root / EUROSAT_BASE_DIR / "Highway"
    out = str(tmp_path / "h.csv")
    assert main(["predict-chips", str(trained_run), str(folder), "-o", out]) == 0
    assert (tmp_path / "h.csv").read_text().startswith("path,class,confidence,AnnualCrop,")
    assert main(["predict-chips", str(tmp_path), str(folder)]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_cli_test_refuses_a_checkpoint_for_other_classes(trained_run, tmp_path, capsys):
    import yaml

    from rs_metapeft.api import load_recipe
    from rs_metapeft.inference import find_checkpoint

    recipe = load_recipe("demo")
    recipe["trainer"]["default_root_dir"] = str(tmp_path / "runs")
    recipe["data"]["init_args"].update(root=str(tmp_path / "three"), num_classes=3,
                                        max_per_class=6, val_per_class=1, test_per_class=1,
                                        image_size=32)
    recipe["model"].update(img_size=32, backbone_kwargs={"depth": 2})
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    ckpt = str(find_checkpoint(trained_run))
    assert main(["test", "--config", str(path), "--ckpt_path", ckpt]) == 2
    assert "missing from the data: ['Highway']" in capsys.readouterr().err


def test_all_nodata_chip_is_flagged_not_classified(task, tiny_s2_root, tmp_path, monkeypatch):
    folder = tmp_path / "chips"
    forest = sorted((tiny_s2_root / EUROSAT_BASE_DIR / "Forest").glob("*.tif"))[0]
    with rasterio.open(forest) as src:
        profile, data = src.profile, src.read()
    partial = data.copy()
    partial[:, :8] = 0
    folder.mkdir()
    for name, array, nodata in (("empty.tif", np.zeros_like(data), 0), ("part.tif", partial, 0),
                                ("untagged.tif", np.zeros_like(data), None)):
        with rasterio.open(folder / name, "w", **{**profile, "nodata": nodata}) as dst:
            dst.write(array)
    # The training data declared 0 as nodata: a chip without its own tag is masked the same way.
    monkeypatch.setattr(task, "data_info", {"nodata": 0.0})
    out = predict_chips(task, folder, tmp_path / "p.csv", progress=False)
    rows = {r["path"]: r for r in csv.DictReader(out.open())}
    for name in ("empty.tif", "untagged.tif"):
        assert rows[name]["class"] == "" and float(rows[name]["confidence"]) == 0
        assert rows[name]["all_nodata"] == "1" and rows[name][task.class_names[0]] == ""
    x = torch.from_numpy(partial.astype(np.float32))
    mean = task.model.normalizer.mean.view(-1, 1, 1).expand_as(x)
    x = torch.where(x == 0, mean, x)  # filled with the training means, as in training
    with torch.no_grad():
        expected = task(x[None]).softmax(1)[0]
    assert rows["part.tif"]["all_nodata"] == "0"
    assert float(rows["part.tif"]["confidence"]) == pytest.approx(float(expected.max()), abs=1e-5)


def test_cli_predict_chips_refuses_an_existing_csv(trained_run, tiny_s2_root, tmp_path, capsys):
    folder = tiny_s2_root / EUROSAT_BASE_DIR / "Highway"
    out = tmp_path / "h.csv"
    out.write_text("earlier results")
    assert main(["predict-chips", str(trained_run), str(folder), "-o", str(out)]) == 2
    assert f"{out} already exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_text() == "earlier results"
    assert main(["predict-chips", str(trained_run), str(folder), "-o", str(out),
                 "--overwrite"]) == 0
    assert out.read_text().startswith("path,class,confidence,")
