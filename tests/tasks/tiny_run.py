"""A tiny MetaPEFT fit run as a script, for the resume (SIGKILL) and DDP tests.

Usage: python tiny_run.py ROOT OUT [--steps N] [--devices D] [--kill-at K] [--resume]
Writes OUT/losses.jsonl (one line per step) and OUT/final_rank{R}.pt at the end.
"""

import argparse
import json
import os
import signal
import sys
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rs_metapeft.data import SyntheticEuroSATDataModule  # noqa: E402
from rs_metapeft.tasks import MetaPEFTTask  # noqa: E402


class Record(L.Callback):
    def __init__(self, out: Path, kill_at: int | None):
        self.out, self.kill_at = out, kill_at

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if self.kill_at is not None and trainer.global_step == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)  # the last checkpoint is from the step before

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_rank == 0:
            with open(self.out / "losses.jsonl", "a") as f:
                f.write(json.dumps({"step": trainer.global_step, "loss": float(outputs["loss"]),
                                    "labels": batch["label"].tolist()}) + "\n")

    def on_train_end(self, trainer, module):
        state = {
            "model": {k: v.detach().cpu() for k, v in module.model.state_dict().items()},
            "outer_steps": module.outer_steps,
            "optimizer": trainer.optimizers[0].state_dict(),
        }
        torch.save(state, self.out / f"final_rank{trainer.global_rank}.pt")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--kill-at", type=int, default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--hypergradient", default="unrolled")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    L.seed_everything(0, verbose=False)
    dm = SyntheticEuroSATDataModule(
        root=args.root, num_classes=4, batch_size=8, meta_batch_size=4, image_size=32,
        max_per_class=20, val_per_class=2, test_per_class=3, synthetic_imbalance_ratio=10,
        meta_protocol="resample", meta_fraction=0.3, meta_balanced_val=True,
    )
    task = MetaPEFTTask(
        bands=dm.bands, num_classes=4, img_size=32, patch_size=8,
        backbone_kwargs={"depth": 2},
        meta={"every_n_steps": 2, "warmup_steps": 1, "hypergradient": args.hypergradient,
              "optimizer": "sgd", "lr": 0.5},
        optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9},
        peft={"positions": ["q", "v", "fc1", "adaptformer"], "dropout": 0.1},
        report_dir=str(out),
    )
    checkpoint = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=out / "ckpt", every_n_train_steps=1, save_last=True, save_top_k=0)
    trainer = L.Trainer(
        max_steps=args.steps, accelerator="cpu", devices=args.devices,
        strategy="ddp" if args.devices > 1 else "auto", default_root_dir=out, logger=False,
        callbacks=[Record(out, args.kill_at), checkpoint], enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
    )
    ckpt = str(out / "ckpt" / "last.ckpt") if args.resume else None
    trainer.fit(task, datamodule=dm, ckpt_path=ckpt)


if __name__ == "__main__":
    main()
