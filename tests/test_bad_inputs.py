"""The bad-input table: every input a user can get wrong, through the command line's entry point.

Each case must end with exit code 2 and one line ``error: <message>`` naming the file or field,
and leave the earlier run (its run folder, export, prediction outputs and data) byte for byte as
it was. docs/faq.md lists the same table.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

from rs_metapeft.cli import main
from rs_metapeft.inference import find_checkpoint
from tests.data.fakes import make_fake_geotiff_folder, write_geotiff

BANDS = ["B02", "B03", "B04", "B08"]


def _recipe(data_root: Path, run_root: Path, **changes) -> dict:
    """A tiny GeoTIFF-folder recipe (one training step of a one-block ViT at 16 px)."""
    recipe = {
        "seed_everything": 0,
        "trainer": {"max_steps": 1, "max_epochs": 1, "default_root_dir": str(run_root),
                    "enable_progress_bar": False, "num_sanity_val_steps": 0,
                    "limit_val_batches": 1, "enable_model_summary": False},
        "model": {"img_size": 16, "patch_size": 8, "backbone_kwargs": {"depth": 1},
                  "peft": {"positions": ["q", "v"]}, "meta": {"warmup_steps": 0}},
        "data": {"class_path": "rs_metapeft.data.GeoTiffFolderDataModule",
                 "init_args": {"root": str(data_root), "csv_file": "labels.csv",
                               "bands": BANDS, "batch_size": 4, "meta_batch_size": 2}},
    }
    for key, value in changes.items():  # dotted keys, e.g. "data.init_args.root"
        *parents, last = key.split(".")
        node = recipe
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return recipe


@dataclass
class Earlier:
    """What an earlier session left behind, which no bad input may change."""

    base: Path
    data: Path
    run: Path
    checkpoint: Path
    export: Path
    scene: Path
    scene_prefix: Path

    def checksums(self) -> dict[str, str]:
        return {str(p.relative_to(self.base)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(self.base.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def earlier(tmp_path_factory) -> Earlier:
    base = tmp_path_factory.mktemp("earlier")
    data = make_fake_geotiff_folder(base / "chips", per_class=[8, 8, 8], bands=BANDS,
                                    nodata=0, with_csv=True)
    recipe = base / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(_recipe(data, base / "runs")))
    assert main(["fit", "--config", str(recipe)]) == 0
    (report,) = (base / "runs").rglob("report.json")
    checkpoint = find_checkpoint(report.parent)
    assert main(["export", str(checkpoint), "--out", str(base / "export")]) == 0
    scene = np.full((4, 32, 32), 1000, np.uint16)
    scene = write_geotiff(base / "scene.tif", scene, BANDS, nodata=0)
    assert main(["predict-scene", str(checkpoint), str(scene), "-o", str(base / "map")]) == 0
    return Earlier(base, data, report.parent, checkpoint, base / "export", scene, base / "map")


# -- how each case spoils an input (in tmp, never in the earlier run) ----------------------------
def _data_copy(e: Earlier, tmp: Path) -> Path:
    return Path(shutil.copytree(e.data, tmp / "chips"))


def _fit(e: Earlier, tmp: Path, data: Path | None = None, **changes) -> list[str]:
    recipe = tmp / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(_recipe(data or e.data, tmp / "runs", **changes)))
    return ["fit", "--config", str(recipe)]


def _truncated_tif(e, tmp):
    data = _data_copy(e, tmp)
    path = data / "crop" / "crop_0.tif"
    path.write_bytes(path.read_bytes()[:300])
    return _fit(e, tmp, data), "crop/crop_0.tif"


def _wrong_band_count(e, tmp):
    data = _data_copy(e, tmp)
    write_geotiff(data / "crop" / "crop_0.tif", np.ones((3, 16, 16), np.uint16), BANDS[:3])
    return _fit(e, tmp, data), "crop_0.tif has 3 bands but data.bands lists 4"


def _all_nodata_chip(e, tmp):
    data = _data_copy(e, tmp)
    write_geotiff(data / "crop" / "crop_0.tif", np.zeros((4, 16, 16), np.uint16), BANDS, nodata=0)
    return _fit(e, tmp, data), "crop_0.tif holds only nodata"


def _empty_class(e, tmp):
    data = tmp / "folders"
    make_fake_geotiff_folder(data, per_class=[4, 4, 4], bands=BANDS)
    (data / "lake").mkdir()
    changes = {"data.init_args.csv_file": None}
    return _fit(e, tmp, data, **changes), f"class folder {data / 'lake'} holds no"


def _csv_rows(e: Earlier, tmp: Path, row: list[str]) -> tuple[Path, int]:
    data = _data_copy(e, tmp)
    with open(data / "labels.csv", "a", newline="") as f:
        csv.writer(f).writerow(row)
    return data, len((data / "labels.csv").read_text().splitlines())


def _unknown_label(e, tmp):
    # A label by index, past the pinned class list (a named label outside it is left out, with
    # a warning; without a pinned list it becomes a class, with a warning).
    data, line = _csv_rows(e, tmp, ["crop/crop_1.tif", "7", "train"])
    args = _fit(e, tmp, data, **{"data.init_args.classes": ["crop", "forest", "water"]})
    return args, f"labels.csv, line {line}: label '7' is not in the class list"


def _path_escape(e, tmp):
    data, line = _csv_rows(e, tmp, ["../../outside/secret.tif", "crop", "train"])
    return _fit(e, tmp, data), f"labels.csv, line {line}: path '../../outside/secret.tif'"


def _unknown_recipe_key(e, tmp):
    return _fit(e, tmp, **{"model.learning_rate": 0.1}), "model.learning_rate"


def _wrong_value_type(e, tmp):
    return _fit(e, tmp, **{"data.init_args.batch_size": "many"}), "data.init_args.batch_size"


def _missing_weights(e, tmp):
    missing = tmp / "vit_tiny.pth"
    return _fit(e, tmp, **{"model.weights": str(missing)}), f"weights file {missing} does not"


def _hub_offline(e, tmp):
    args = _fit(e, tmp, **{"model.weights": "hf-hub:timm/rs-metapeft-not-cached"})
    return args, "HF_HUB_OFFLINE=1 is set and the weights are not cached"


def _band_mismatched_checkpoint(e, tmp):
    data = make_fake_geotiff_folder(tmp / "rgb", per_class=[8, 8, 8], bands=BANDS[:3],
                                    with_csv=True)
    recipe = tmp / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(_recipe(data, tmp / "runs",
                                             **{"data.init_args.bands": BANDS[:3]})))
    args = ["test", "--config", str(recipe), "--ckpt_path", str(e.checkpoint)]
    return args, "missing from the data: ['B08']"


def _wrong_crs_scene(e, tmp):
    scene = write_geotiff(tmp / "utm33.tif", np.full((4, 32, 32), 1000, np.uint16), BANDS,
                          epsg=32633)
    return (["predict-scene", str(e.checkpoint), str(scene), "-o", str(tmp / "m")],
            f"{scene} is in EPSG:32633 but EPSG:32632 is the CRS of the model's training chips")


def _missing_root(e, tmp):
    return _fit(e, tmp, tmp / "no_such_folder"), str(tmp / "no_such_folder")


def _truncated_checkpoint(e, tmp):
    half = tmp / "half.ckpt"
    data = e.checkpoint.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    return (["predict-chips", str(half), str(e.data), "-o", str(tmp / "p.csv")],
            f"cannot read checkpoint {half}")


def _export_copy(e: Earlier, tmp: Path, edit: Callable[[dict], None]) -> Path:
    folder = Path(shutil.copytree(e.export, tmp / "export"))
    manifest = json.loads((folder / "manifest.json").read_text())
    edit(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def _tampered_export(e, tmp):
    folder = _export_copy(e, tmp, lambda m: m["classes"].__setitem__(0, "Lake"))
    return (["predict-chips", str(folder), str(e.data), "-o", str(tmp / "p.csv")],
            f"{folder / 'manifest.json'} does not match its checksum")


def _export_tensors_outside(e, tmp):
    from rs_metapeft.export import read_manifest, write_manifest

    folder = _export_copy(e, tmp, lambda m: None)
    manifest = read_manifest(folder)
    manifest["tensors"]["file"] = str(e.export / "adapter.safetensors")  # re-signed: only the
    write_manifest(folder, manifest)                                     # path is wrong
    return (["predict-chips", str(folder), str(e.data), "-o", str(tmp / "p.csv")],
            "tensors.file")


def _export_without_base(e, tmp):
    from rs_metapeft.export import read_manifest, write_manifest

    folder = _export_copy(e, tmp, lambda m: None)
    manifest = read_manifest(folder)
    moved = tmp / "moved" / "last.ckpt"  # as if the run had been moved since the export
    manifest["base"]["checkpoint"]["path"] = str(moved)
    write_manifest(folder, manifest)
    return (["predict-chips", str(folder), str(e.data), "-o", str(tmp / "p.csv")],
            f"provide the training checkpoint last.ckpt (was {moved}) with --weights FILE")


def _report_dir_reused(e, tmp):
    return (_fit(e, tmp, **{"model.report_dir": str(e.run)}),
            f"{e.run / 'report.json'} already exists; pass --overwrite")


def _existing_export(e, tmp):
    return (["export", str(e.checkpoint), "--out", str(e.export)],
            f"{e.export / 'manifest.json'}, {e.export / 'adapter.safetensors'} already exist")


def _existing_predictions(e, tmp):
    target = e.run / "report.json"
    return (["predict-chips", str(e.checkpoint), str(e.data), "-o", str(target)],
            f"{target} already exists; pass --overwrite")


def _existing_scene_outputs(e, tmp):
    return (["predict-scene", str(e.checkpoint), str(e.scene), "-o", str(e.scene_prefix)],
            "map_classes.tif, ")


#: (case, how to make it); docs/faq.md shows the same table with each message.
CASES = [
    ("truncated GeoTIFF", _truncated_tif),
    ("wrong band count", _wrong_band_count),
    ("all-nodata chip", _all_nodata_chip),
    ("empty class", _empty_class),
    ("unknown label", _unknown_label),
    ("path escape", _path_escape),
    ("unknown recipe key", _unknown_recipe_key),
    ("wrong value type", _wrong_value_type),
    ("missing weights", _missing_weights),
    ("hub offline", _hub_offline),
    ("band-mismatched checkpoint", _band_mismatched_checkpoint),
    ("wrong-CRS scene", _wrong_crs_scene),
    ("missing root", _missing_root),
    ("truncated checkpoint", _truncated_checkpoint),
    ("tampered export", _tampered_export),
    ("export tensors outside", _export_tensors_outside),
    ("export without its base weights", _export_without_base),
    ("report dir reused", _report_dir_reused),
    ("existing export", _existing_export),
    ("existing predictions", _existing_predictions),
    ("existing scene outputs", _existing_scene_outputs),
]


def test_the_checkpoint_and_export_record_the_training_crs_and_nodata(earlier):
    from rs_metapeft.checkpointing import read_checkpoint
    from rs_metapeft.export import read_manifest

    # and the chips' footprint, which scene prediction tiles at (16 px of 10 m here)
    recorded = {"crs": "EPSG:32632", "nodata": 0.0, "nodata_from_recipe": False,
                "chip_size": [16, 16], "resolution": [10.0, 10.0]}
    assert read_checkpoint(earlier.checkpoint)["rs_metapeft"]["data"] == recorded
    assert read_manifest(earlier.export)["data"] == recorded


@pytest.mark.parametrize("make", [make for _, make in CASES], ids=[name for name, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_earlier_runs_are_untouched(make, earlier, tmp_path,
                                                                     capsys):
    before = earlier.checksums()
    args, names = make(earlier, tmp_path)
    capsys.readouterr()
    try:
        code = main(args)
    except SystemExit as exit_:  # the recipe parser's own exit
        code = exit_.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert code == 2, err
    assert "Traceback" not in err
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert names in errors[0]
    assert "Union subtypes" not in errors[0]  # the data module's own message, not the parser's
    assert earlier.checksums() == before
