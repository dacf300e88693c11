"""Small data, model and trainer builders shared by the task tests."""

import lightning as L
import torch

from rs_metapeft.data import SyntheticEuroSATDataModule
from rs_metapeft.peft import gamma_parameters
from rs_metapeft.tasks import MetaPEFTTask

from ..conftest import TINY_SPEC, TINY_VIT


def make_dm(root, **kwargs):
    args = dict(
        root=str(root), num_classes=TINY_SPEC.num_classes, batch_size=8, meta_batch_size=4,
        image_size=TINY_SPEC.image_size, max_per_class=TINY_SPEC.max_per_class,
        val_per_class=TINY_SPEC.val_per_class, test_per_class=TINY_SPEC.test_per_class,
        synthetic_imbalance_ratio=TINY_SPEC.imbalance_ratio,
    )
    args.update(kwargs)
    return SyntheticEuroSATDataModule(**args)


def make_task(dm, meta=None, optimizer=None, **kwargs):
    args = dict(
        bands=dm.bands, num_classes=TINY_SPEC.num_classes, img_size=32, patch_size=8,
        backbone_kwargs=TINY_VIT,
        meta={"every_n_steps": 1, "warmup_steps": 1, **(meta or {})},
        optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9, **(optimizer or {})},
    )
    args.update(kwargs)
    return MetaPEFTTask(**args)


def make_trainer(tmp_path, max_steps=3, **kwargs):
    args = dict(max_steps=max_steps, default_root_dir=tmp_path, logger=False,
                enable_checkpointing=False, enable_progress_bar=False, num_sanity_val_steps=0,
                limit_val_batches=0, enable_model_summary=False)
    args.update(kwargs)
    return L.Trainer(**args)


def fit(root, tmp_path, max_steps=3, dm_kwargs=None, trainer_kwargs=None, seed=0, **task_kwargs):
    L.seed_everything(seed, verbose=False)
    dm = make_dm(root, **(dm_kwargs or {}))
    task = make_task(dm, **task_kwargs)
    trainer = make_trainer(tmp_path, max_steps, **(trainer_kwargs or {}))
    trainer.fit(task, datamodule=dm)
    return task, trainer


def phi_state(task):
    """Non-gamma model tensors and the main optimiser's tensors."""
    gammas = gamma_parameters(task.model)
    model = {k: v.detach().clone() for k, v in task.model.state_dict().items() if k not in gammas}
    main = task.optimizers(use_pl_optimizer=False)
    main = main[0] if isinstance(main, list) else main
    opt = {i: {k: v.clone() for k, v in s.items() if torch.is_tensor(v)}
           for i, s in main.state_dict()["state"].items()}
    return model, opt


def gamma_state(task):
    """The effective gamma of every modulator (1 at the start, whatever the parametrisation)."""
    return {f"{m.layer}.{m.position}": m.modulation().detach().clone()
            for m in task.model.peft_modules}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], dict):
            assert_same(a[k], b[k])
        else:
            assert torch.equal(a[k], b[k]), k
