import math

import lightning as L
import pytest
import torch

import rs_metapeft.tasks.metapeft as metapeft_module
from rs_metapeft.meta import Hypergradient
from rs_metapeft.peft import gamma_map, gamma_parameters

from .factory import fit, gamma_state


class LRs(L.Callback):
    def __init__(self):
        self.lrs = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


@pytest.fixture(scope="module")
def two_epochs(tiny_s2_root, tmp_path_factory):
    """A two-epoch MetaPEFT fit with bounded gamma, a wild meta step and a report folder."""
    folder = tmp_path_factory.mktemp("run")
    lrs = LRs()
    task, trainer = fit(
        tiny_s2_root, folder, max_steps=-1,
        trainer_kwargs={"max_epochs": 2, "callbacks": [lrs]},
        meta={"every_n_steps": 2, "warmup_steps": 1, "optimizer": "sgd", "lr": 1e4,
              "gamma_min": 0.5, "gamma_max": 1.5},
        report_dir=str(folder),
    )
    return task, trainer, lrs.lrs, folder


def test_one_cosine_spans_the_whole_run_across_epochs(two_epochs):
    task, trainer, lrs, _ = two_epochs
    total = trainer.estimated_stepping_batches
    assert trainer.current_epoch == 2 and len(lrs) == total == trainer.global_step
    expected = [0.05 * 0.5 * (1 + math.cos(math.pi * s / total)) for s in range(total)]
    assert lrs == pytest.approx(expected)  # no restart at the epoch boundary


def test_outer_steps_follow_the_schedule_bounds_and_are_logged(two_epochs):
    task, trainer, _, folder = two_epochs
    expected_steps = [s for s in range(trainer.global_step) if s >= 1 and (s - 1) % 2 == 0]
    assert [s for s, _ in task.gamma_history] == expected_steps
    assert task.outer_steps == len(expected_steps)
    # The bounds hold for the effective gamma of the default (log) parametrisation too.
    assert task.peft_config.gamma_param == "log"
    values = torch.tensor([v for row in gamma_map(task.model).values() for v in row.values()])
    assert values.min() >= 0.5 - 1e-6 and values.max() <= 1.5 + 1e-6 and (values != 1).any()
    metrics = trainer.callback_metrics
    for key in ("meta/val_loss", "meta/train_loss", "meta/skipped_steps", "gamma/L00_q",
                "gamma/L01_adaptformer"):
        assert key in metrics, key
    assert float(metrics["gamma/L01_adaptformer"]) == pytest.approx(
        task.gamma_history[-1][1][1]["adaptformer"])
    assert (folder / "gamma_heatmap.png").stat().st_size > 0
    assert (folder / "gamma_history.png").stat().st_size > 0


def test_a_non_finite_hypergradient_skips_the_step_and_is_counted(tiny_s2_root, tmp_path,
                                                                  monkeypatch):
    def poisoned(model, *args, **kwargs):
        grads = {n: torch.full_like(p, math.nan) for n, p in gamma_parameters(model).items()}
        return Hypergradient(grads, 1.0, math.inf)

    monkeypatch.setattr(metapeft_module, "step_hypergradient", poisoned)
    task, trainer = fit(tiny_s2_root, tmp_path, max_steps=3)
    assert task.skipped_outer_steps == 2 and task.outer_steps == 0
    assert all(torch.all(g == 1) for g in gamma_state(task).values())
    assert float(trainer.callback_metrics["meta/skipped_steps"]) == 2


def test_linear_probe_and_full_fine_tuning_run_through_the_same_task(tiny_s2_root, tmp_path):
    probe, _ = fit(tiny_s2_root, tmp_path / "probe", max_steps=2, peft={"positions": []})
    assert probe.outer_steps == 0 and not probe.model.peft_modules
    trainable = {n for n, p in probe.model.named_parameters() if p.requires_grad}
    assert trainable and not any(n.startswith("backbone.") for n in trainable)

    L.seed_everything(0)
    full, _ = fit(tiny_s2_root, tmp_path / "full", max_steps=2, peft={"method": "full"})
    fresh = metapeft_module.MetaPEFTTask(**{k: v for k, v in full.hparams.items()})
    moved = [n for n, p in full.model.backbone.named_parameters()
             if "lora" not in n and "adaptformer" not in n
             and not torch.equal(p, dict(fresh.model.backbone.named_parameters())[n])]
    assert any("blocks.0.attn.qkv.weight" in n for n in moved)
    assert full.outer_steps == 0 and not full.model.peft_modules  # no modulators to meta-learn


def test_class_mean_head_init_sets_normalised_class_means(tiny_s2_root, tmp_path):
    task, trainer = fit(tiny_s2_root, tmp_path, max_steps=0, head="cosine",
                        head_init="class_mean", meta={"enabled": False})
    dm = trainer.datamodule
    feats = {c: [] for c in range(len(dm.class_names))}
    with torch.no_grad():
        task.model.eval()
        for i in range(len(dm.train_dataset)):
            sample = dm.train_dataset[i]
            feats[int(sample["label"])].append(task.model.features(sample["image"][None].float()))
    means = torch.stack([torch.cat(f).mean(0) for f in feats.values()])
    assert torch.allclose(task.model.head.weight, torch.nn.functional.normalize(means, dim=1),
                          atol=1e-5)
