"""Issue 16, item 1 end to end: `rs-metapeft fit --config demo_sar --model.weights=torchgeo:...`.

The weights come from a fake file in a temporary torch hub cache (TorchGeo's own loading path,
no network); only sizes are overridden on the command line (steps, depth, image and batches).
"""

import json

import pytest
import torch

from rs_metapeft.api import load_model
from rs_metapeft.checkpointing import read_checkpoint
from rs_metapeft.cli import main
from rs_metapeft.export import ExportError

from .conftest import TINY_SPEC
from .models.torchgeo_cache import S1_MAE, write_fake_weights


#: The command line's size overrides (what tests.conftest.tiny_twin does to a recipe).
def _tiny(run_dir, data_root) -> list[str]:
    init = dict(root=str(data_root), num_classes=TINY_SPEC.num_classes, batch_size=8,
                meta_batch_size=4, num_workers=0, image_size=TINY_SPEC.image_size,
                max_per_class=TINY_SPEC.max_per_class, val_per_class=TINY_SPEC.val_per_class,
                test_per_class=TINY_SPEC.test_per_class,
                synthetic_imbalance_ratio=TINY_SPEC.imbalance_ratio)
    return [
        f"--trainer.default_root_dir={run_dir}", "--trainer.max_steps=2",
        "--trainer.max_epochs=1", "--trainer.limit_val_batches=1",
        "--trainer.limit_test_batches=2", "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false", "--model.backbone_kwargs={depth: 2}",
        f"--model.img_size={TINY_SPEC.image_size}", "--model.meta.every_n_steps=1",
        "--model.meta.warmup_steps=0",
        *(f"--data.init_args.{k}={v}" for k, v in init.items()),
    ]


def test_demo_sar_fits_on_torchgeo_sentinel1_weights(tmp_path, monkeypatch, tiny_s1_root):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    write_fake_weights(S1_MAE)
    run = tmp_path / "run"
    assert main(["fit", "--config", "demo_sar", f"--model.weights={S1_MAE}",
                 *_tiny(run, tiny_s1_root)]) == 0
    (report_path,) = run.rglob("report.json")
    report = json.loads(report_path.read_text())
    assert report["meta"]["outer_steps"] == 2
    # The recipe's vit_tiny_patch16_224 gave way to the weights' architecture, and says so.
    assert any("replaced by vit_small_patch16_224" in w for w in report["warnings"])
    (ckpt,) = run.rglob("last.ckpt")
    hp = read_checkpoint(ckpt)["hyper_parameters"]
    assert (hp["backbone"], hp["patch_size"], hp["backbone_bands"]) == (
        "vit_small_patch16_224", 8, ["VV", "VH"])
    # The trained model loads and predicts; its rebuild needs no weights file.
    for f in (tmp_path / "torch").rglob("*.pth"):
        f.unlink()
    task = load_model(run)
    assert task.model.backbone.patch_embed.proj.in_channels == 2
    image = torch.randn(2, 2, TINY_SPEC.image_size, TINY_SPEC.image_size)
    with torch.no_grad():
        expected = task(image)
    assert expected.shape == (2, TINY_SPEC.num_classes)
    # An adapter-sized export names the TorchGeo weights under it: fetched (here: from the
    # torch hub cache) only when allowed, like any hub weights.
    export = tmp_path / "export"
    assert main(["export", str(ckpt), "--out", str(export)]) == 0
    ckpt.unlink()  # its base tensors would do too; here the weights must come by name
    with pytest.raises(ExportError, match=f"hub weights {S1_MAE}.*--allow-download"):
        load_model(export)
    write_fake_weights(S1_MAE)
    exported = load_model(export, allow_download=True)
    with torch.no_grad():
        assert torch.allclose(exported(image), expected, atol=1e-6)


def test_missing_torchgeo_file_is_one_line(tmp_path, monkeypatch, tiny_s1_root, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert main(["fit", "--config", "demo_sar", f"--model.weights={S1_MAE}",
                 *_tiny(tmp_path / "run", tiny_s1_root)]) == 2
    # One error line (Lightning's own warnings, once per process, are not this test's business).
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
    assert line.startswith("error: TorchGeo weights torchgeo:ViTSmall16_Weights.SENTINEL1_GRD_MAE")
    assert "B2_vits16_mae_ep99_enc.pth" in line and str(tmp_path / "torch" / "hub") in line
