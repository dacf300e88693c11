"""Accuracy and few-group accuracy per spectral stem, same PEFT and same steps.

Runs every stem on the synthetic 13-band Sentinel-2 set and on the synthetic Sentinel-1 (VV, VH)
set, with one fixed PEFT (LoRA on q, v; modulators fixed at 1, no meta step) so the stem is the
only difference. Prints a table and writes JSON to benchmarks/results/stems.json.

CPU-sized: 4 runs of 20 steps per data set, about 2.5 minutes per run measured on a heavily loaded
shared 2-core machine (load ~13; one thread per process, the two data sets as two processes), so
about 10-12 minutes in all; on an idle machine well under that. Timings are noisy; accuracies are
seeded. Each data set can run on its own with --data (and its own --out).

    PYTHONPATH=. python benchmarks/stems.py \\
        --weights /work/shared/backbones/vit_tiny_p8_64_kd_effnetlite0.pth
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

from rs_metapeft.data import SyntheticEuroSATDataModule, SyntheticSARDataModule
from rs_metapeft.models import STEMS
from rs_metapeft.tasks import MetaPEFTTask

RESULTS = Path(__file__).parent / "results" / "stems.json"


def _datamodule(kind: str, root: Path, args) -> L.LightningDataModule:
    common = dict(num_classes=args.classes, batch_size=args.batch_size, image_size=64,
                  max_per_class=args.max_per_class, val_per_class=2,
                  test_per_class=args.test_per_class, synthetic_imbalance_ratio=args.imbalance,
                  data_seed=0, augment=True)
    if kind == "sentinel2":
        return SyntheticEuroSATDataModule(root=str(root / "s2"), **common)
    return SyntheticSARDataModule(root=str(root / "s1"), **common)


def run_one(kind: str, stem: str, root: Path, args) -> dict:
    L.seed_everything(args.seed, verbose=False)
    dm = _datamodule(kind, root, args)
    task = MetaPEFTTask(
        bands=dm.bands, num_classes=args.classes, weights=args.weights, img_size=64,
        patch_size=8, stem=stem, head="cosine", head_init="class_mean",
        peft={"positions": ["q", "v"], "rank": 4, "alpha": 4.0},
        meta={"enabled": False}, loss="logit_adjusted",
        optimizer={"name": "adamw", "lr": args.lr, "weight_decay": 1e-4},
        report_dir=str(root / "reports" / f"{kind}-{stem}"),
    )
    trainer = L.Trainer(max_steps=args.steps, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, limit_val_batches=0,
                        default_root_dir=str(root / "lightning"))
    start = time.perf_counter()
    trainer.fit(task, datamodule=dm)
    fit_s = time.perf_counter() - start
    trainer.test(task, datamodule=dm, verbose=False)
    report = task.last_report
    return {
        "data": kind, "stem": stem, "steps": args.steps,
        "accuracy": report["overall_accuracy"],
        "class_mean_accuracy": report["class_mean_accuracy"],
        "many_accuracy": report["group_accuracy"]["many"],
        "few_accuracy": report["group_accuracy"]["few"],
        "trainable_parameters": report["trainable_parameters"],
        "fit_seconds": round(fit_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default=None,
                        help="backbone weights file (e.g. the offline stand-in ViT-Tiny p8 64 px); "
                             "default: random initialisation")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--max-per-class", type=int, default=40)
    parser.add_argument("--imbalance", type=float, default=10.0)
    parser.add_argument("--test-per-class", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stems", nargs="+", default=list(STEMS), choices=STEMS)
    parser.add_argument("--data", nargs="+", default=["sentinel2", "sentinel1"],
                        choices=["sentinel2", "sentinel1"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for kind in args.data:
            for stem in args.stems:
                rows.append(run_one(kind, stem, root, args))
                r = rows[-1]
                print(f"{kind:9s} {stem:16s} acc {r['accuracy']:.3f}  few {r['few_accuracy']}  "
                      f"({r['fit_seconds']} s)", flush=True)

    header = ("data", "stem", "accuracy", "class-mean", "many", "few", "trainable", "fit s")
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in rows:
        few = "n/a" if r["few_accuracy"] is None else f"{r['few_accuracy']:.3f}"
        many = "n/a" if r["many_accuracy"] is None else f"{r['many_accuracy']:.3f}"
        print(f"| {r['data']} | {r['stem']} | {r['accuracy']:.3f} | "
              f"{r['class_mean_accuracy']:.3f} | {many} | {few} | "
              f"{r['trainable_parameters']:,} | {r['fit_seconds']} |")
    result = {
        "title": f"Spectral stems on {', '.join(args.data)} "
                 f"({'stand-in pretrained' if args.weights else 'random'} ViT-Tiny)",
        "benchmark": "stems", "weights": args.weights,
        "weights_note": "offline stand-in ViT-Tiny p8 64 px, KD from EfficientNet-Lite0 on a tiny "
                        "transfer set (not ImageNet)" if args.weights else "random init",
        "settings": {k: v for k, v in vars(args).items() if k not in ("out",)},
        "peft": "LoRA q,v rank 4 alpha 4, gamma fixed at 1 (meta off); cosine head, class-mean "
                "init, logit-adjusted CE, AdamW",
        "command": "python " + " ".join(sys.argv),
        "machine": "2 shared CPU cores (timings noisy)",
        "torch_threads": torch.get_num_threads(),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(result, indent=2, default=str))
    tmp_out.replace(args.out)
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
