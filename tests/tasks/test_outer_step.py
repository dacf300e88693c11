import lightning as L
import torch

from rs_metapeft.data import SyntheticEuroSATDataModule
from rs_metapeft.peft import is_gamma
from rs_metapeft.tasks import MetaPEFTTask

from ..conftest import TINY_SPEC, TINY_VIT


def _fit(root, tmp_path, **meta):
    dm = SyntheticEuroSATDataModule(
        root=str(root), num_classes=TINY_SPEC.num_classes, batch_size=8, meta_batch_size=4,
        image_size=TINY_SPEC.image_size, max_per_class=TINY_SPEC.max_per_class,
        val_per_class=TINY_SPEC.val_per_class, test_per_class=TINY_SPEC.test_per_class,
        synthetic_imbalance_ratio=TINY_SPEC.imbalance_ratio,
    )
    task = MetaPEFTTask(
        bands=dm.bands, num_classes=TINY_SPEC.num_classes, img_size=32, patch_size=8,
        backbone_kwargs=TINY_VIT,
        meta={"every_n_steps": 1, "warmup_steps": 1, **meta},
        optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9},
    )
    trainer = L.Trainer(max_steps=3, default_root_dir=tmp_path, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(task, datamodule=dm)
    return task, trainer


def _state(task):
    model = {k: v.detach().clone() for k, v in task.model.state_dict().items() if not is_gamma(k)}
    main = task.optimizers(use_pl_optimizer=False)[0]
    opt = {i: {k: v.clone() for k, v in s.items() if torch.is_tensor(v)}
           for i, s in main.state_dict()["state"].items()}
    return model, opt


def test_outer_step_changes_gamma_only_and_bit_identically(tiny_s2_root, tmp_path):
    task, _ = _fit(tiny_s2_root, tmp_path)
    assert task.outer_steps >= 1
    model_before, opt_before = _state(task)
    gamma_before = {k: v.clone() for k, v in task.model.state_dict().items() if is_gamma(k)}
    task.outer_step()
    model_after, opt_after = _state(task)
    assert model_before.keys() == model_after.keys()
    assert all(torch.equal(model_before[k], model_after[k]) for k in model_before)
    assert opt_before.keys() == opt_after.keys() and opt_before
    for i in opt_before:
        assert all(torch.equal(opt_before[i][k], opt_after[i][k]) for k in opt_before[i])
    gamma_after = {k: v for k, v in task.model.state_dict().items() if is_gamma(k)}
    assert any(not torch.equal(gamma_before[k], gamma_after[k]) for k in gamma_before)


def test_meta_off_leaves_gamma_at_one(tiny_s2_root, tmp_path):
    task, _ = _fit(tiny_s2_root, tmp_path, enabled=False)
    assert task.outer_steps == 0
    assert all(torch.all(m.modulation() == 1) for m in task.model.peft_modules)


def test_band_statistics_and_classes_travel_in_the_checkpoint(tiny_s2_root, tmp_path):
    task, trainer = _fit(tiny_s2_root, tmp_path)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    ckpt = torch.load(path, weights_only=True)
    info = ckpt["rs_metapeft"]
    assert info["bands"] == task.model.bands and len(info["band_mean"]) == 13
    assert info["classes"][0] == "AnnualCrop" and sum(info["train_counts"]) > 0
    restored = MetaPEFTTask.load_from_checkpoint(path, weights_only=True)
    assert torch.equal(restored.model.normalizer.mean, task.model.normalizer.mean)
    assert restored.class_names == task.class_names
