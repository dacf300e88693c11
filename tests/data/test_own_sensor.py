"""Your own sensor through the command line: declared bands, and dual-pol SAR chips in linear power.

Both fit a GeoTIFF folder written in the real on-disk format (band descriptions as the files'
band names), then predict with the checkpoint and with an export in a registry that has never
seen the declared bands, as a fresh process would.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import rasterio
import torch
import yaml

from rs_metapeft import bands as band_registry
from rs_metapeft.checkpointing import read_checkpoint
from rs_metapeft.cli import main
from rs_metapeft.inference import find_checkpoint, load_model
from rs_metapeft.models.stem import rgb_band_indices
from tests.data.fakes import make_fake_dual_pol_folder, make_fake_geotiff_folder

MSS = ["MSS4_green", "MSS5_red", "MSS6_nir1", "MSS7_nir2"]
#: Landsat 1-5 MSS bands 4-7 (Landsat 4-5 numbering 1-4): centre and width in nm.
MSS_BANDS = [
    {"name": "MSS4_green", "wavelength_nm": 550, "bandwidth_nm": 100},
    {"name": "MSS5_red", "wavelength_nm": 650, "bandwidth_nm": 100},
    {"name": "MSS6_nir1", "wavelength_nm": 750, "bandwidth_nm": 100},
    {"name": "MSS7_nir2", "wavelength_nm": 950, "bandwidth_nm": 300},
]


def _recipe(tmp_path, root, stem: str, **data) -> str:
    recipe = {
        "seed_everything": 0,
        "trainer": {"max_steps": 2, "max_epochs": 1, "default_root_dir": str(tmp_path / "runs"),
                    "enable_progress_bar": False, "num_sanity_val_steps": 0,
                    "limit_val_batches": 1, "enable_model_summary": False},
        "model": {"img_size": 16, "patch_size": 8, "backbone_kwargs": {"depth": 1},
                  "stem": stem, "peft": {"positions": ["q", "v"]},
                  "meta": {"warmup_steps": 0}},
        "data": {"class_path": "rs_metapeft.data.GeoTiffFolderDataModule",
                 "init_args": {"root": str(root), "batch_size": 4, "meta_batch_size": 2,
                               **data}},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def _rows(path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_declared_bands_fit_predict_and_export(tmp_path, capsys, monkeypatch):
    root = make_fake_geotiff_folder(tmp_path / "chips", per_class=6, bands=MSS, dtype="uint8")
    monkeypatch.setattr(band_registry, "_DECLARED", {})
    # Undeclared, the files' band names stop the run at once, saying how to declare them.
    assert main(["fit", "--config", _recipe(tmp_path, root, "patch_expand")]) == 2
    error = capsys.readouterr().err
    assert "unknown band 'MSS4_green'" in error and "data.custom_bands" in error

    recipe = _recipe(tmp_path, root, "patch_expand", custom_bands=MSS_BANDS)
    assert main(["fit", "--config", recipe]) == 0
    (report,) = (tmp_path / "runs").rglob("report.json")
    checkpoint = find_checkpoint(report.parent)
    saved = read_checkpoint(checkpoint)
    assert saved["hyper_parameters"]["custom_bands"] == MSS_BANDS
    assert saved["rs_metapeft"]["bands"] == MSS  # the files' descriptions, in file order
    # The declared wavelengths place the bands: red feeds R, green G and B (the nearest), so
    # the patch stem started with gain 1 on them and 0 on the NIR bands (two small steps since).
    assert rgb_band_indices(MSS) == [1, 0, 0]
    gain = load_model(checkpoint).model.spectral_stem.gain.tolist()
    assert gain == pytest.approx([1.0, 1.0, 0.0, 0.0], abs=0.05)

    chips = root / "forest"
    monkeypatch.setattr(band_registry, "_DECLARED", {})  # a new process: the checkpoint declares
    assert main(["predict-chips", str(checkpoint), str(chips), "-o",
                 str(tmp_path / "ckpt.csv")]) == 0
    reference = _rows(tmp_path / "ckpt.csv")
    assert len(reference) == 6 and set(reference[0]) >= {"crop", "forest", "water"}
    assert main(["export", str(report.parent), "--out", str(tmp_path / "export")]) == 0
    monkeypatch.setattr(band_registry, "_DECLARED", {})
    assert main(["predict-chips", str(tmp_path / "export"), str(chips), "-o",
                 str(tmp_path / "export.csv")]) == 0
    assert _rows(tmp_path / "export.csv") == reference


def test_dual_pol_linear_power_is_converted_to_db_in_fit_and_prediction(tmp_path, capsys):
    root = make_fake_dual_pol_folder(tmp_path / "chips", per_class=6)
    recipe = _recipe(tmp_path, root, "band_mix", preprocessing={"input": "intensity"})
    assert main(["fit", "--config", recipe]) == 0
    (report,) = (tmp_path / "runs").rglob("report.json")
    checkpoint = find_checkpoint(report.parent)
    recorded = read_checkpoint(checkpoint)["rs_metapeft"]["data"]["preprocessing"]
    assert recorded == {"input": "intensity", "to_db": True, "clip_db": None, "floor": 1e-6}
    task = load_model(checkpoint)
    mean = task.model.normalizer.mean
    # Statistics in dB (the class means lie between -20 and -5 dB), not in linear power.
    assert torch.all((mean > -25) & (mean < 0)), mean

    chips = root / "urban"
    assert main(["predict-chips", str(checkpoint), str(chips), "-o",
                 str(tmp_path / "p.csv")]) == 0
    rows = _rows(tmp_path / "p.csv")
    assert main(["export", str(checkpoint), "--out", str(tmp_path / "export")]) == 0
    assert main(["predict-chips", str(tmp_path / "export"), str(chips), "-o",
                 str(tmp_path / "e.csv")]) == 0
    assert _rows(tmp_path / "e.csv") == rows

    # The same probabilities by hand: dB = 10 log10(power), nodata (0) filled with the means.
    for row in rows:
        with rasterio.open(chips / row["path"]) as src:
            power = src.read().astype(np.float64)
        db = np.where(power == 0, np.nan, 10 * np.log10(np.maximum(power, 1e-6)))
        x = torch.from_numpy(db).float()
        x = torch.where(torch.isnan(x), mean.view(-1, 1, 1).expand_as(x), x)
        with torch.no_grad():
            by_hand = task(x[None]).softmax(1)[0]
            linear = task(torch.from_numpy(power).float()[None]).softmax(1)[0]
        expected = [float(f"{p:.6f}") for p in by_hand]
        assert [float(row[c]) for c in task.class_names] == pytest.approx(expected, abs=2e-6)
        assert not torch.allclose(linear, by_hand, atol=1e-3)  # unconverted input differs
