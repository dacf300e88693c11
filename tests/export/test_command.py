import csv
import json
import shutil

import lightning as L
import pytest
import torch
import yaml
from safetensors.torch import load_file

from rs_metapeft.cli import main
from rs_metapeft.data import SyntheticEuroSATDataModule
from rs_metapeft.export import ADAPTER_FILE, load_export
from rs_metapeft.export.command import model_from_checkpoint
from rs_metapeft.tasks import MetaPEFTTask

from ..conftest import TINY_SPEC, TINY_VIT

DATA_ARGS = dict(num_classes=TINY_SPEC.num_classes, batch_size=8, meta_batch_size=4,
                 image_size=TINY_SPEC.image_size, max_per_class=TINY_SPEC.max_per_class,
                 val_per_class=TINY_SPEC.val_per_class, test_per_class=TINY_SPEC.test_per_class,
                 synthetic_imbalance_ratio=TINY_SPEC.imbalance_ratio)


@pytest.fixture(scope="module")
def run(tiny_s2_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    dm = SyntheticEuroSATDataModule(root=str(tiny_s2_root), **DATA_ARGS)
    task = MetaPEFTTask(
        bands=dm.bands, num_classes=TINY_SPEC.num_classes, img_size=32, patch_size=8,
        backbone_kwargs=TINY_VIT, stem="patch_expand", head="cosine", head_scale=10.0,
        head_init="class_mean", peft={"positions": ["q", "v", "adaptformer"]},
        meta={"every_n_steps": 1, "warmup_steps": 1},
        optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9},
    )
    trainer = L.Trainer(max_steps=3, default_root_dir=folder, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(task, datamodule=dm)
    ckpt = folder / "last.ckpt"
    trainer.save_checkpoint(ckpt)
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump({"data": {
        "class_path": "rs_metapeft.data.SyntheticEuroSATDataModule",
        "init_args": {"root": str(tiny_s2_root), **DATA_ARGS}}}))
    return task, ckpt, config


def test_class_mean_head_init_ran_at_fit_start(run):
    task, _, _ = run
    assert task.hparams.head_init == "class_mean" and task.model.head.scale == 10.0
    # Random rows have norm ~0.14 (0.01 * sqrt(192)); class means are unit rows, and three small
    # steps keep them near 1.
    norms = task.model.head.weight.norm(dim=1)
    assert torch.all((norms > 0.7) & (norms < 1.3))


def test_checkpoint_rebuilds_the_task_model(run):
    task, ckpt, _ = run
    model, info = model_from_checkpoint(ckpt)
    assert model.stem_kind == info["stem"] == "patch_expand" and info["groups"] is not None
    x = torch.randn(2, len(task.model.bands), 32, 32)
    task.model.eval()
    assert torch.equal(model(x), task.model(x))


def test_export_command_prunes_reports_and_loads_back(run, tmp_path, capsys):
    task, ckpt, config = run
    out = tmp_path / "export"
    assert main(["export", str(ckpt), "--out", str(out), "--prune-threshold", "1.5",
                 "--data-config", str(config)]) == 0
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and "change" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    n = len(task.model.peft_modules)
    assert len(manifest["pruned"]) == n  # every gamma is about 1 < 1.5
    record = manifest["export"]
    assert record["accuracy_change"] == pytest.approx(record["after"]["accuracy"]
                                                      - record["before"]["accuracy"])
    assert manifest["stem"] == "patch_expand" and len(manifest["classes"]) == TINY_SPEC.num_classes
    loaded = load_export(out)
    assert loaded.peft_modules == []
    x = torch.randn(2, len(task.model.bands), 32, 32)
    reference, _ = model_from_checkpoint(ckpt)
    for m in reference.peft_modules:
        m.set_modulation(0.0)  # pruning everything = every modulator at zero
    assert torch.allclose(loaded(x), reference(x), atol=1e-5)


def test_export_command_errors_are_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "none.ckpt"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "none.ckpt" in err and "run folder" in err and len(err.strip().splitlines()) == 1


def test_export_refuses_an_earlier_export_unless_overwrite(run, tmp_path, capsys):
    _, ckpt, _ = run
    out = tmp_path / "export"
    assert main(["export", str(ckpt), "--out", str(out)]) == 0
    before = (out / "manifest.json").read_bytes()
    assert main(["export", str(ckpt), "--out", str(out), "--merge"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "manifest.json").read_bytes() == before
    assert main(["export", str(ckpt), "--out", str(out), "--merge", "--overwrite"]) == 0
    assert json.loads((out / "manifest.json").read_text())["merged"]


def _predictions(source, chips, out, *extra) -> list[dict]:
    assert main(["predict-chips", str(source), str(chips), "-o", str(out), *extra]) == 0
    with open(out) as f:
        return list(csv.DictReader(f))


def test_default_export_is_adapter_sized_and_predicts_as_the_checkpoint(run, tiny_s2_root,
                                                                         tmp_path, capsys):
    _, ckpt, _ = run
    own = tmp_path / "run" / "last.ckpt"  # a run folder of our own, to move the checkpoint away
    own.parent.mkdir()
    shutil.copy(ckpt, own)
    small, whole = tmp_path / "adapter", tmp_path / "whole"
    assert main(["export", str(own.parent), "--out", str(small)]) == 0  # a run folder
    printed = capsys.readouterr().out
    assert main(["export", str(own), "--out", str(whole), "--include-backbone"]) == 0
    assert "needs no other file" in capsys.readouterr().out
    for line in ("adapter.safetensors", "manifest.json", "PEFT modules and gamma",
                 "base weights: not included", str(own), "--include-backbone", "pruned: none"):
        assert line in printed
    tensors, full = load_file(small / ADAPTER_FILE), load_file(whole / ADAPTER_FILE)
    frozen = ["backbone.pos_embed", "backbone.blocks.0.attn.qkv.weight", "backbone.norm.weight"]
    assert all(name in full and name not in tensors for name in frozen)
    assert not [n for n in tensors if n.startswith("backbone.blocks.") and ".lora." not in n
                and ".adaptformer." not in n]
    size, whole_size = ((f / ADAPTER_FILE).stat().st_size for f in (small, whole))
    assert size * 3 < whole_size
    manifest = json.loads((small / "manifest.json").read_text())
    assert manifest["base"]["checkpoint"]["path"] == str(own.resolve())

    chips = next(tiny_s2_root.rglob("*.tif")).parent
    reference = _predictions(own, chips, tmp_path / "ckpt.csv")
    assert _predictions(small, chips, tmp_path / "small.csv") == reference
    assert _predictions(whole, chips, tmp_path / "whole.csv") == reference

    moved = own.rename(tmp_path / "elsewhere.ckpt")
    capsys.readouterr()
    assert main(["predict-chips", str(small), str(chips), "-o", str(tmp_path / "x.csv")]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1
    for part in ("only the trained tensors", "last.ckpt", str(own.resolve()), "--weights FILE",
                 "weights=FILE"):
        assert part in error
    assert _predictions(small, chips, tmp_path / "moved.csv", "--weights", str(moved)) == reference
    assert _predictions(whole, chips, tmp_path / "whole2.csv") == reference
