import json

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from rs_metapeft.bands import BandMismatchError
from rs_metapeft.cli import main
from rs_metapeft.data.synthetic import EUROSAT_BASE_DIR
from rs_metapeft.inference import load_model, load_task, predict_scene

from ..conftest import multilabel_test_images

CHIP = 32
ORIGIN = (431000.0, 5210000.0)


@pytest.fixture(scope="module")
def task(trained_run):
    return load_task(trained_run)


def _chips(root, n):
    files = sorted((root / EUROSAT_BASE_DIR).rglob("*.tif"))[: n]
    out = []
    for path in files:
        with rasterio.open(path) as src:
            out.append(src.read().astype(np.float32))
    return out


def _scene(path, tiles, rows, cols, crs="EPSG:32632", count=None, nodata=None):
    """A georeferenced scene tiled from square chips (row-major), 10 m pixels, UTM 32N."""
    side = tiles[0].shape[-1]
    data = np.zeros((tiles[0].shape[0], rows * side, cols * side), np.float32)
    for i, tile in enumerate(tiles[: rows * cols]):
        r, c = divmod(i, cols)
        data[:, r * side:(r + 1) * side, c * side:(c + 1) * side] = tile
    data = data[:count] if count else data
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1],
                       count=data.shape[0], dtype="float32", crs=crs, nodata=nodata,
                       transform=from_origin(*ORIGIN, 10.0, 10.0)) as dst:
        dst.write(data)
    return path


def test_scene_map_matches_chip_predictions_and_keeps_georeference(task, tiny_s2_root, tmp_path):
    tiles = _chips(tiny_s2_root, 12)
    scene = _scene(tmp_path / "scene.tif", tiles, rows=3, cols=4)
    classes, confidence = predict_scene(task, scene, tmp_path / "out" / "s", progress=False)
    with torch.no_grad():
        probs = task(torch.from_numpy(np.stack(tiles))).softmax(1).numpy()
    with rasterio.open(classes) as c, rasterio.open(confidence) as f, rasterio.open(scene) as s:
        assert c.crs == s.crs and f.crs == s.crs
        assert c.transform == s.transform and f.transform == s.transform
        assert c.shape == s.shape == (3 * CHIP, 4 * CHIP)
        assert json.loads(c.tags()["classes"]) == task.class_names
        class_map, conf = c.read(1), f.read(1)
    for i in range(12):
        r, c = divmod(i, 4)
        block = (slice(r * CHIP, (r + 1) * CHIP), slice(c * CHIP, (c + 1) * CHIP))
        assert (class_map[block] == probs[i].argmax()).all()
        assert np.allclose(conf[block], probs[i].max(), atol=1e-5)


def test_scene_is_tiled_at_the_training_chips_footprint(task, tiny_s2_root, tmp_path):
    """A scene at 20 m gets 16-pixel chips (the 32 x 10 m training chips' ground), resized."""
    from rs_metapeft.inference.chips import resize_to_model
    from rs_metapeft.inference.scene import chip_footprint

    assert task.data_info["chip_size"] == [CHIP, CHIP]
    assert task.data_info["resolution"] == [10.0, 10.0]
    coarse = [t[:, ::2, ::2] for t in _chips(tiny_s2_root, 4)]  # the same ground at 20 m
    half = CHIP // 2
    data = np.zeros((coarse[0].shape[0], 2 * half, 2 * half), np.float32)
    for i, tile in enumerate(coarse):
        r, c = divmod(i, 2)
        data[:, r * half:(r + 1) * half, c * half:(c + 1) * half] = tile
    scene = tmp_path / "coarse.tif"
    with rasterio.open(scene, "w", driver="GTiff", width=2 * half, height=2 * half,
                       count=data.shape[0], dtype="float32", crs="EPSG:32632",
                       transform=from_origin(*ORIGIN, 20.0, 20.0)) as dst:
        dst.write(data)
    assert chip_footprint(task, (20.0, 20.0)) == (half, half)
    classes, _ = predict_scene(task, scene, progress=False)
    with torch.no_grad():
        expected = task(resize_to_model(torch.from_numpy(np.stack(coarse)), CHIP)).argmax(1).numpy()
    with rasterio.open(classes) as src:
        class_map = src.read(1)
    for i in range(4):
        r, c = divmod(i, 2)
        assert (class_map[r * half:(r + 1) * half, c * half:(c + 1) * half] == expected[i]).all()


def test_overlapping_chips_cover_every_pixel(task, tiny_s2_root, tmp_path):
    scene = _scene(tmp_path / "scene.tif", _chips(tiny_s2_root, 6), rows=2, cols=3)
    classes, confidence = predict_scene(task, scene, stride=CHIP // 2, progress=False)
    assert classes == tmp_path / "scene_classes.tif"
    with rasterio.open(classes) as c, rasterio.open(confidence) as f:
        assert (c.read(1) >= 0).all() and (c.read(1) < len(task.class_names)).all()
        assert np.isfinite(f.read(1)).all()


def test_wrong_band_count_is_refused_before_any_work(task, tiny_s2_root, tmp_path, monkeypatch):
    scene = _scene(tmp_path / "rgb.tif", _chips(tiny_s2_root, 1), rows=1, cols=1, count=3)
    monkeypatch.setattr(task, "forward", lambda x: pytest.fail("the model ran"))
    with pytest.raises(BandMismatchError, match="has 3 bands but the model was made for 13"):
        predict_scene(task, scene, progress=False)
    assert not list(tmp_path.glob("rgb_*.tif"))


def test_other_crs_is_refused_before_any_work(task, tiny_s2_root, tmp_path, monkeypatch):
    scene = _scene(tmp_path / "s.tif", _chips(tiny_s2_root, 1), rows=1, cols=1, crs="EPSG:32633")
    monkeypatch.setattr(task, "forward", lambda x: pytest.fail("the model ran"))
    with pytest.raises(ValueError, match="EPSG:32633 but EPSG:32632 was asked for"):
        predict_scene(task, scene, crs="EPSG:32632", progress=False)


def test_cli_predict_scene_and_its_errors(trained_run, tiny_s2_root, tmp_path, capsys):
    scene = _scene(tmp_path / "s.tif", _chips(tiny_s2_root, 2), rows=1, cols=2)
    assert main(["predict-scene", str(trained_run), str(scene), "-o", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o_classes.tif").is_file() and (tmp_path / "o_confidence.tif").is_file()
    assert main(["predict-scene", str(trained_run), str(tmp_path / "none.tif")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_nodata_pixels_get_the_nodata_class_and_zero_confidence(task, tiny_s2_root, tmp_path):
    tiles = _chips(tiny_s2_root, 3)
    tiles[0][:] = -9999  # a tile of nothing but nodata: not classified at all
    tiles[1][:, :, :CHIP // 2] = -9999  # half a tile: the rest is classified as in training
    scene = _scene(tmp_path / "scene.tif", tiles, rows=1, cols=3, nodata=-9999)
    classes, confidence = predict_scene(task, scene, progress=False)
    filled = torch.from_numpy(tiles[1]).clone()
    mean = task.model.normalizer.mean.view(-1, 1, 1).expand_as(filled)
    filled[filled == -9999] = mean[filled == -9999]
    with torch.no_grad():
        probs = task(torch.stack([filled, torch.from_numpy(tiles[2])])).softmax(1).numpy()
    with rasterio.open(classes) as c, rasterio.open(confidence) as f:
        class_map, conf = c.read(1), f.read(1)
    assert (class_map[:, :CHIP] == -1).all() and (conf[:, :CHIP] == 0).all()
    assert (class_map[:, CHIP:CHIP + CHIP // 2] == -1).all()
    assert (conf[:, CHIP:CHIP + CHIP // 2] == 0).all()
    assert (class_map[:, CHIP + CHIP // 2:2 * CHIP] == probs[0].argmax()).all()
    assert np.allclose(conf[:, CHIP + CHIP // 2:2 * CHIP], probs[0].max(), atol=1e-5)
    assert (class_map[:, 2 * CHIP:] == probs[1].argmax()).all()


def test_scene_in_another_crs_than_the_training_chips_is_refused(task, tiny_s2_root, tmp_path,
                                                                 monkeypatch):
    scene = _scene(tmp_path / "s.tif", _chips(tiny_s2_root, 1), rows=1, cols=1, crs="EPSG:32633")
    monkeypatch.setattr(task, "data_info", {"crs": "EPSG:32632"})  # as a checkpoint records it
    with pytest.raises(ValueError, match="EPSG:32633 but EPSG:32632 is the CRS of the model's "
                                         "training chips.*--crs EPSG:32633"):
        predict_scene(task, scene, progress=False)
    predict_scene(task, scene, crs="EPSG:32633", progress=False)  # accepted when asked for


def test_existing_outputs_are_refused_before_any_work(trained_run, tiny_s2_root, tmp_path,
                                                      capsys):
    scene = _scene(tmp_path / "s.tif", _chips(tiny_s2_root, 1), rows=1, cols=1)
    (tmp_path / "s_confidence.tif").write_bytes(b"earlier results")
    assert main(["predict-scene", str(trained_run), str(scene)]) == 2
    assert "s_confidence.tif already exists; pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "s_confidence.tif").read_bytes() == b"earlier results"
    assert not (tmp_path / "s_classes.tif").exists()
    assert main(["predict-scene", str(trained_run), str(scene), "--overwrite"]) == 0


# -- multi-label models: per-label scores and presence ------------------------------------------
def _multilabel_scene(run, path, count=2, **kwargs):
    """A 1-row scene of the multi-label run's first test images (raw bands), and the images."""
    images, _ = multilabel_test_images(run, count)
    return _scene(path, [i.numpy() for i in images], 1, count, **kwargs), images


def _chip_scores(task, chips):
    """The model's per-label scores of raw (N, bands, H, W) chips, resized as prediction does."""
    from rs_metapeft.inference.chips import resize_to_model

    with torch.no_grad():
        x = resize_to_model(torch.as_tensor(chips), int(task.hparams.img_size))
        return task.scores(x).numpy()


def _read_label_outputs(prefix):
    """Header and pixels of the presence and score GeoTIFFs written for ``prefix``."""
    out = []
    for name in ("labels", "scores"):
        with rasterio.open(f"{prefix}_{name}.tif") as src:
            out.append({"count": src.count, "descriptions": list(src.descriptions),
                        "dtype": src.dtypes[0], "nodata": src.nodata, "crs": src.crs,
                        "shape": src.shape, "tags": src.tags(), "band_tags": src.tags(1),
                        "pixels": src.read()})
    return out


def test_multilabel_scene_writes_scores_and_presence_per_label(multilabel_run,
                                                               multilabel_checkpoint, tmp_path):
    images, _ = multilabel_test_images(multilabel_run, 2)
    side = images.shape[-1]
    tiles = [i.numpy().copy() for i in images]
    tiles[1][:, :, :side // 2] = -9999  # half a tile: the other half is scored as in training
    tiles.append(np.full_like(tiles[0], -9999))  # nothing but nodata: not scored at all
    scene = _scene(tmp_path / "scene.tif", tiles, rows=1, cols=3, nodata=-9999)
    out = tmp_path / "out" / "s"
    assert main(["predict-scene", str(multilabel_checkpoint), str(scene), "-o", str(out)]) == 0
    task = load_model(multilabel_checkpoint)
    names, thresholds = task.class_names, task.thresholds.numpy()
    labels, scores = _read_label_outputs(out)
    presence, score = labels["pixels"], scores["pixels"]
    assert labels["count"] == scores["count"] == len(names) == 19
    assert labels["descriptions"] == scores["descriptions"] == names
    assert labels["dtype"] == "uint8" and scores["dtype"] == "float32"
    assert labels["nodata"] == 255 and np.isnan(scores["nodata"])
    assert labels["crs"] == scores["crs"] == "EPSG:32632"
    assert labels["shape"] == scores["shape"] == (side, 3 * side)
    assert json.loads(labels["tags"]["labels"]) == names
    assert json.loads(scores["tags"]["thresholds"]) == thresholds.tolist()
    assert float(scores["band_tags"]["threshold"]) == thresholds[0]
    scored = np.ones((side, 3 * side), bool)
    scored[:, side:side + side // 2] = scored[:, 2 * side:] = False
    assert (np.isfinite(score) == scored).all()
    assert (presence[:, ~scored] == 255).all()
    assert (presence[:, scored] == (score[:, scored] >= thresholds[:, None])).all()
    # The whole tile scores as the chip does; the half tile with its nodata filled by the band
    # means, as in training.
    filled = tiles[1].copy()
    mean = np.broadcast_to(task.model.normalizer.mean.numpy()[:, None, None], filled.shape)
    filled[filled == -9999] = mean[filled == -9999]
    expected = _chip_scores(task, np.stack([tiles[0], filled]))
    assert np.allclose(score[:, :, :side], expected[0][:, None, None], atol=1e-5)
    assert np.allclose(score[:, :, side + side // 2:2 * side], expected[1][:, None, None],
                       atol=1e-5)
    assert (presence[:, 0, 0] == task.label_sets(torch.from_numpy(expected[:1]))[0].numpy()).all()


def test_multilabel_scene_averages_overlapping_chips(multilabel_run, multilabel_checkpoint,
                                                     tmp_path):
    scene, images = _multilabel_scene(multilabel_run, tmp_path / "scene.tif")
    side = images.shape[-1]
    assert main(["predict-scene", str(multilabel_checkpoint), str(scene),
                 "--stride", str(side // 2)]) == 0
    presence, score = (o["pixels"] for o in _read_label_outputs(tmp_path / "scene"))
    task = load_model(multilabel_checkpoint)
    row = torch.cat(list(images), dim=-1)
    chips = _chip_scores(task, torch.stack([row[..., c:c + side] for c in (0, side // 2, side)]))
    assert np.allclose(score[:, :, :side // 2], chips[0][:, None, None], atol=1e-5)
    overlap = (chips[0] + chips[1]) / 2
    assert np.allclose(score[:, :, side // 2:side], overlap[:, None, None], atol=1e-5)
    assert (presence == (score >= task.thresholds.numpy()[:, None, None])).all()


def test_multilabel_scene_outputs_where_no_chip_reached_and_existing_ones(
        multilabel_run, multilabel_checkpoint, tmp_path, capsys):
    scene, images = _multilabel_scene(multilabel_run, tmp_path / "s.tif", count=3)
    side = images.shape[-1]
    (tmp_path / "s_scores.tif").write_bytes(b"earlier results")
    command = ["predict-scene", str(multilabel_checkpoint), str(scene), "--stride", str(2 * side)]
    assert main(command) == 2
    assert "s_scores.tif already exists; pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "s_scores.tif").read_bytes() == b"earlier results"
    assert not (tmp_path / "s_labels.tif").exists()
    assert main([*command, "--overwrite"]) == 0  # chips at columns 0 and 2 * side only
    presence, score = (o["pixels"] for o in _read_label_outputs(tmp_path / "s"))
    gap = (slice(None), slice(None), slice(side, 2 * side))
    assert np.isnan(score[gap]).all() and (presence[gap] == 255).all()
    assert np.isfinite(score[:, :, :side]).all() and np.isfinite(score[:, :, 2 * side:]).all()
    assert not (tmp_path / "s_classes.tif").exists()  # the single-label outputs are not written
