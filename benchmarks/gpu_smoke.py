"""GPU smoke check: a ViT-B/16-sized MetaPEFT fit in bf16, step time with meta off and on.

Random-init ``vit_base_patch16_224`` (nothing downloaded) at 224 px on 13-band synthetic chips
generated in memory, LoRA at q, k, v, o, fc1, fc2 + AdaptFormer in all 12 blocks, batch 64, meta
batch 32, an outer step every 10 inner steps, ``precision="bf16-mixed"``. Fits fixed-gamma PEFT,
MetaPEFT first_order, MetaPEFT unrolled and unrolled with the Hessian-vector product on 16 of
the 64 images (``hvp_batch_size``) for ``--steps`` steps each in one process and prints
the mean step time (CUDA-synchronised, after a warm-up), the ratio to fixed-gamma PEFT, peak
GPU memory and whether gamma moved and stayed finite. Writes ``benchmarks/results/gpu_smoke.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lightning as L  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import Dataset  # noqa: E402

from rs_metapeft.data import LongTailDataModule  # noqa: E402
from rs_metapeft.peft import gamma_parameters  # noqa: E402
from rs_metapeft.tasks import MetaPEFTTask  # noqa: E402

BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12",
         "B8A"]
CLASSES = [f"class{i}" for i in range(10)]


class RandomChips(Dataset):
    """Deterministic class-dependent noise chips (long-tailed counts), made on the fly."""

    def __init__(self, counts: list[int], size: int, seed: int) -> None:
        self.targets = [c for c, n in enumerate(counts) for _ in range(n)]
        self.classes = CLASSES
        self.size, self.seed = size, seed

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        label = self.targets[i]
        image = torch.randn(len(BANDS), self.size, self.size, generator=g)
        image[label % len(BANDS)] += 1.5  # a learnable, band-specific class signal
        return {"image": image, "label": torch.tensor(label)}


class RandomChipsDataModule(LongTailDataModule):
    """Long-tailed in-memory chips at ViT-B/16 input size."""

    def __init__(self, size: int = 224, **kwargs) -> None:
        super().__init__(bands=BANDS, num_classes=len(CLASSES), **kwargs)
        self.size = size

    def make_dataset(self, split: str) -> Dataset:
        counts = ([int(400 * 0.05 ** (c / 9)) for c in range(10)] if split == "train"
                  else [8] * 10)
        return RandomChips(counts, self.size, {"train": 0, "val": 1, "test": 2}[split])


class StepTimer(L.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        torch.cuda.synchronize()
        self._t = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self._t)


def run(name: str, meta: dict, args) -> dict:
    L.seed_everything(0, verbose=False)
    dm = RandomChipsDataModule(batch_size=64, meta_batch_size=32, num_workers=args.workers,
                               augment=False)
    task = MetaPEFTTask(
        bands=BANDS, num_classes=len(CLASSES), backbone="vit_base_patch16_224", weights=None,
        img_size=224, patch_size=16,
        peft={"positions": ["q", "k", "v", "o", "fc1", "fc2", "adaptformer"]},
        meta={"every_n_steps": 10, "warmup_steps": 10, **meta},
        optimizer={"name": "adamw", "lr": 1e-3},
    )
    timer = StepTimer()
    torch.cuda.reset_peak_memory_stats()
    trainer = L.Trainer(max_steps=args.steps, accelerator="gpu", devices=1,
                        precision="bf16-mixed", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, limit_val_batches=0, callbacks=[timer],
                        default_root_dir=args.out / "gpu_smoke_runs")
    start = time.perf_counter()
    trainer.fit(task, datamodule=dm)
    timed = timer.times[args.warmup:]
    timed = timed[: len(timed) - len(timed) % 10]  # whole outer-step cycles
    gammas = torch.cat([g.detach().float().flatten()
                        for g in gamma_parameters(task.model).values()])
    return {"mean_step_s": sum(timed) / len(timed), "steps_timed": len(timed),
            "fit_s": time.perf_counter() - start,
            "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20,
            "outer_steps": task.outer_steps, "skipped_outer_steps": task.skipped_outer_steps,
            "gamma_finite": bool(torch.isfinite(gammas).all()),
            "gamma_range": [float(gammas.min()), float(gammas.max())]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_smoke needs a CUDA GPU")
    args.out.mkdir(parents=True, exist_ok=True)
    torch.backends.cuda.matmul.allow_tf32 = True
    configs = {"fixed-gamma PEFT": {"enabled": False},
               "MetaPEFT first_order": {"hypergradient": "first_order"},
               "MetaPEFT unrolled": {"hypergradient": "unrolled"},
               "MetaPEFT unrolled, HVP on 16": {"hypergradient": "unrolled",
                                                "hvp_batch_size": 16}}
    results = {"device": torch.cuda.get_device_name(0), "steps": args.steps, "runs": {}}
    for name, meta in configs.items():
        results["runs"][name] = run(name, meta, args)
        print(name, json.dumps(results["runs"][name]), flush=True)
    base = results["runs"]["fixed-gamma PEFT"]["mean_step_s"]
    print(f"\n{results['device']}, ViT-B/16 224 px, batch 64, bf16-mixed, outer step every 10")
    print(f"{'configuration':30s} {'ms/step':>8s} {'ratio':>6s} {'peak GiB':>9s} {'outer':>6s}")
    for name, r in results["runs"].items():
        r["ratio"] = r["mean_step_s"] / base
        print(f"{name:30s} {1000 * r['mean_step_s']:8.1f} {r['ratio']:6.3f} "
              f"{r['peak_gpu_mib'] / 1024:9.2f} {r['outer_steps']:6d}")
    results.update(title="GPU smoke: MetaPEFT against fixed-gamma PEFT (bf16)",
                   command="python " + " ".join(sys.argv), machine=results["device"],
                   rows=[{"configuration": k, **v} for k, v in results["runs"].items()])
    path = args.out / "gpu_smoke.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
