"""Step time and peak memory of MetaPEFT vs fixed-gamma PEFT, and few-group accuracy per mode.

Timing: the configurations are fitted in ONE process, interleaved round by round, on the same
data and model (ViT-Tiny, 64 px, patch 8, batch 64, 13 bands, LoRA at q, k, v, o, fc1, fc2 and
AdaptFormer in all 12 blocks; meta batch 32; an outer step every 10 inner steps). The mean time
of an inner step is taken over whole outer-step cycles after a warm-up, so each mean holds the
same share of outer steps. Ratios are what to read: the CPU may be shared.

Memory: each configuration runs again in a fresh subprocess; peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is reported, i.e. the whole process (Python,
libraries, data and model), not just tensors.

Accuracy (``--accuracy``): each hypergradient mode and meta protocol is trained for
``--accuracy-steps`` steps on the synthetic long-tailed Sentinel-2 set and tested; overall,
class-mean and many/medium/few accuracy are reported.

``--components`` (quick, for a busy CPU): no Lightning loop; the task's own pieces are timed
side by side, interleaved, in one process: a plain inner step (forward, backward, optimiser
step), and the extra work of an outer step for each mode (``step_hypergradient`` first_order /
unrolled reusing the inner step, unrolled with the Hessian-vector product on 32 / 16 / 8 of the
64 training images, ``lookahead_hypergradient`` on a separate meta-train batch). The step-time
ratio at one outer step every N inner steps is ``1 + extra / (N * inner)``; each train-step variant
also gets the cosine similarity of its hypergradient to the exact (whole-batch unrolled) one.

Usage:
    python benchmarks/step_time.py --components [--repeats 3] [--lookahead-lr 1e-3]
    python benchmarks/step_time.py [--weights /path/to/vit_tiny.pth] [--cycles 3] [--rounds 2]
        [--accuracy] [--accuracy-steps 200]

Prints a table and writes ``benchmarks/results/step_time.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lightning as L  # noqa: E402
import torch  # noqa: E402

from rs_metapeft.data import SyntheticEuroSATDataModule  # noqa: E402
from rs_metapeft.tasks import MetaPEFTTask  # noqa: E402

BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12",
         "B8A"]
EVERY = 10
WARMUP = 3

#: name -> (model.meta overrides, datamodule overrides)
TIMING = {
    "fixed-gamma PEFT": ({"enabled": False}, {}),
    "MetaPEFT first_order": ({"hypergradient": "first_order"}, {}),
    "MetaPEFT unrolled": ({"hypergradient": "unrolled"}, {}),
    "MetaPEFT unrolled (meta_train look-ahead)": (
        {"hypergradient": "unrolled", "lookahead": "meta_train"}, {}),
}
ACCURACY = {
    "linear probe": ({"enabled": False}, {}, {"positions": []}),
    "fixed-gamma PEFT": ({"enabled": False}, {}, None),
    "first_order / holdout": ({"hypergradient": "first_order"}, {"meta_protocol": "holdout"}, None),
    "unrolled / holdout": ({"hypergradient": "unrolled"}, {"meta_protocol": "holdout"}, None),
    "unrolled, HVP on 16 / holdout": ({"hypergradient": "unrolled", "hvp_batch_size": 16},
                                      {"meta_protocol": "holdout"}, None),
    "unrolled / resample": ({"hypergradient": "unrolled"},
                            {"meta_protocol": "resample", "meta_fraction": 0.25}, None),
    "unrolled / resample, balanced val": (
        {"hypergradient": "unrolled"},
        {"meta_protocol": "resample", "meta_fraction": 0.25, "meta_balanced_val": True}, None),
    "unrolled_k=2 / holdout": ({"hypergradient": "unrolled_k", "lookahead_steps": 2},
                               {"meta_protocol": "holdout"}, None),
}


class StepTimer(L.Callback):
    def __init__(self):
        self.times: list[float] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self._t = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.times.append(time.perf_counter() - self._t)


def _dm(args, **overrides):
    kw = dict(root=args.data, bands=BANDS, num_classes=10, batch_size=64, meta_batch_size=32,
              num_workers=0, seed=0)
    kw.update(overrides)
    return SyntheticEuroSATDataModule(**kw)


def _task(args, meta, peft=None, **kwargs):
    return MetaPEFTTask(
        bands=BANDS, num_classes=10, backbone="vit_tiny_patch16_224", weights=args.weights,
        img_size=64, patch_size=8,
        peft=peft or {"positions": ["q", "k", "v", "o", "fc1", "fc2", "adaptformer"]},
        meta={"every_n_steps": EVERY, "warmup_steps": WARMUP, **meta},
        optimizer={"name": "adamw", "lr": 1e-3}, **kwargs,
    )


def _fit(args, meta, dm_kw, steps, callbacks=(), peft=None, **task_kw):
    L.seed_everything(0, verbose=False)
    dm = _dm(args, **dm_kw)
    task = _task(args, meta, peft, **task_kw)
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                        callbacks=list(callbacks), default_root_dir=args.out / "runs")
    trainer.fit(task, datamodule=dm)
    return task, trainer, dm


def timing(args) -> dict:
    steps = WARMUP + args.cycles * EVERY
    per: dict[str, list[float]] = {name: [] for name in TIMING}
    for _ in range(args.rounds):
        for name, (meta, dm_kw) in TIMING.items():
            timer = StepTimer()
            _fit(args, meta, dm_kw, steps, [timer])
            per[name].extend(timer.times[WARMUP:])  # whole cycles: one outer step each
    base = sum(per["fixed-gamma PEFT"]) / len(per["fixed-gamma PEFT"])
    return {name: {"mean_step_s": sum(t) / len(t), "ratio": sum(t) / len(t) / base,
                   "steps_timed": len(t)} for name, t in per.items()}


def memory(args) -> dict:
    out = {}
    for name in TIMING:
        cmd = [sys.executable, __file__, "--memory-of", name, "--data", args.data,
               "--out", str(args.out)] + (["--weights", args.weights] if args.weights else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out[name] = json.loads(proc.stdout.strip().splitlines()[-1])["peak_rss_mib"]
    return out


def accuracy(args) -> dict:
    results = {}
    for name, (meta, dm_kw, peft) in ACCURACY.items():
        task, trainer, dm = _fit(args, meta, dm_kw, args.accuracy_steps, peft=peft,
                                 loss="logit_adjusted",  # the demo recipe's loss
                                 report_dir=str(args.out / "runs" / name.replace(" ", "_")
                                                .replace("/", "-")))
        trainer.test(task, datamodule=dm, verbose=False)
        r = task.last_report
        results[name] = {"overall": r["overall_accuracy"], "class_mean": r["class_mean_accuracy"],
                         **{g: r["group_accuracy"][g] for g in ("many", "medium", "few")},
                         "outer_steps": task.outer_steps}
    return results


def components(args) -> dict:
    from rs_metapeft.meta import lookahead_hypergradient, rule_from_optimizer, step_hypergradient
    from rs_metapeft.peft import split_parameters

    dm = _dm(args)
    dm.setup("fit")
    task = _task(args, {})
    task.model.normalizer.set_statistics(dm.band_stats.mean, dm.band_stats.std)
    counts = torch.tensor(dm.train_counts, dtype=torch.float)
    task.log_prior.copy_((counts / counts.sum()).log())
    model, loss_fn = task.model, task.training_loss
    phi, _ = split_parameters(model)
    opt = torch.optim.AdamW(phi.values(), lr=1e-3)
    loader = iter(dm.train_dataloader())

    def train_batch():
        b = next(loader)
        return b["image"], b["label"]

    def meta_batch(part):
        b = dm.meta_batch(part)
        return b["image"], b["label"]

    def inner(batch):
        loss = loss_fn(model(batch[0]), batch[1])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        return loss

    exact_key = "unrolled (train-step look-ahead)"
    variants = {  # name -> (mode, HVP images or None for the whole batch)
        "first_order (train-step look-ahead)": ("first_order", None),
        exact_key: ("unrolled", None),
        **{f"unrolled, HVP on {n} of 64 images": ("unrolled", n) for n in (32, 16, 8)},
    }
    times: dict[str, list[float]] = {k: [] for k in ("inner step", *variants,
                                                     "unrolled (meta_train look-ahead)")}
    cosine: dict[str, list[float]] = {k: [] for k in variants}
    error: dict[str, list[float]] = {k: [] for k in variants}
    lr = args.lookahead_lr
    for _ in range(args.repeats):
        batch = train_batch()
        t = time.perf_counter()
        loss = inner(batch)
        opt.step()
        times["inner step"].append(time.perf_counter() - t)
        batch = train_batch()
        loss = inner(batch)
        grads = {n: p.grad for n, p in phi.items()}
        # The look-ahead is the AdamW step training takes (at AdamW lr ``--lookahead-lr``).
        rule = rule_from_optimizer(opt, phi, lr=lr)
        val = meta_batch("val")  # one meta batch for every variant, so fidelity compares alike
        results = {}
        for name, (mode, hvp) in variants.items():
            t = time.perf_counter()
            results[name] = step_hypergradient(model, loss_fn, batch, grads, val, rule, mode,
                                               float(loss), hvp_batch_size=hvp)
            times[name].append(time.perf_counter() - t)
        exact = _flat(results[exact_key])
        for name, result in results.items():
            cosine[name].append(float(torch.nn.functional.cosine_similarity(
                _flat(result), exact, dim=0)))
            error[name].append(float((_flat(result) - exact).norm() / exact.norm()))
        tr, val = meta_batch("train"), meta_batch("val")
        t = time.perf_counter()
        lookahead_hypergradient(model, loss_fn, [tr], val, rule_from_optimizer(opt, phi, lr=lr),
                                "unrolled")
        times["unrolled (meta_train look-ahead)"].append(time.perf_counter() - t)
        opt.step()
    mean = {k: sum(v) / len(v) for k, v in times.items()}
    base = mean["inner step"]
    return {k: {"mean_s": m, "per_inner_step": m / base,
                "ratio_every_10": 1.0 if k == "inner step" else 1 + m / (EVERY * base),
                "cosine_to_exact": _mean(cosine.get(k)),
                "relative_error": _mean(error.get(k))}
            for k, m in mean.items()}


def _mean(values: list[float] | None) -> float | None:
    return sum(values) / len(values) if values else None


def _flat(result) -> torch.Tensor:
    return torch.cat([g.reshape(-1).double() for g in result.grads.values()])


def _fmt(v):
    return "-" if v is None else f"{v:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None, help="backbone weights file (model.weights)")
    parser.add_argument("--data", default="data/demo_bench_s2")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--cycles", type=int, default=2, help="outer-step cycles timed per fit")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-timing", action="store_true", help="with --accuracy: accuracy only")
    parser.add_argument("--accuracy", action="store_true")
    parser.add_argument("--accuracy-steps", type=int, default=200)
    parser.add_argument("--components", action="store_true", help="quick side-by-side timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lookahead-lr", type=float, default=1e-3,
                        help="look-ahead step size of --components (the demo's AdamW lr)")
    parser.add_argument("--memory-of", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    _dm(args).prepare_data()
    if args.memory_of:  # child process: a short fit with one outer step, then the peak RSS
        meta, dm_kw = TIMING[args.memory_of]
        _fit(args, meta, dm_kw, WARMUP + 2)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"peak_rss_mib": peak}))
        return
    if args.components:
        result = {"setup": {"mode": "components", "repeats": args.repeats,
                            "lookahead_lr": args.lookahead_lr,
                            "weights": args.weights, "torch_threads": torch.get_num_threads(),
                            "every_n_steps": EVERY, "batch_size": 64, "meta_batch_size": 32}}
        result["components"] = components(args)
        print(f"\n{'piece':40s} {'s':>8s} {'x inner':>8s} {'ratio @ every 10':>17s} "
              f"{'cos to exact':>13s} {'rel. error':>11s}")
        for name, r in result["components"].items():
            cos, err = r["cosine_to_exact"], r["relative_error"]
            print(f"{name:40s} {r['mean_s']:8.3f} {r['per_inner_step']:8.2f} "
                  f"{r['ratio_every_10']:17.3f} {'-' if cos is None else f'{cos:.6f}':>13s} "
                  f"{'-' if err is None else f'{err:.2e}':>11s}")
        result.update(_provenance(f"Outer-step cost and fidelity by hypergradient mode "
                                  f"(look-ahead lr {args.lookahead_lr:g})"))
        result["rows"] = [{"piece": k, **v} for k, v in result["components"].items()]
        suffix = "" if args.lookahead_lr == 1e-3 else f"-lr{args.lookahead_lr:g}"
        path = args.out / f"step_time_components{suffix}.json"
        path.write_text(json.dumps(result, indent=2))
        print(f"\nwritten to {path}")
        return
    result = {"setup": {"backbone": "vit_tiny_patch16_224", "weights": args.weights,
                        "img_size": 64, "patch_size": 8, "batch_size": 64, "meta_batch_size": 32,
                        "every_n_steps": EVERY, "torch_threads": torch.get_num_threads(),
                        "cycles": args.cycles, "rounds": args.rounds}}
    result["timing"] = {} if args.no_timing else timing(args)
    if not (args.no_memory or args.no_timing):
        result["peak_rss_mib"] = memory(args)
    print(f"\n{'configuration':45s} {'s/step':>8s} {'ratio':>7s} {'peak RSS MiB':>13s}")
    for name, t in result["timing"].items():
        mem = result.get("peak_rss_mib", {}).get(name)
        print(f"{name:45s} {t['mean_step_s']:8.3f} {t['ratio']:7.3f} "
              f"{'-' if mem is None else f'{mem:13.0f}'}")
    if args.accuracy:
        result["accuracy"] = accuracy(args)
        result["setup"]["accuracy_steps"] = args.accuracy_steps
        print(f"\n{'configuration':40s} {'overall':>8s} {'cls-mean':>8s} {'many':>6s} "
              f"{'medium':>6s} {'few':>6s}")
        for name, r in result["accuracy"].items():
            print(f"{name:40s} {_fmt(r['overall']):>8s} {_fmt(r['class_mean']):>8s} "
                  f"{_fmt(r['many']):>6s} {_fmt(r['medium']):>6s} {_fmt(r['few']):>6s}")
    result.update(_provenance("Step time: MetaPEFT against fixed-gamma PEFT"))
    peaks = result.get("peak_rss_mib", {})
    result["rows"] = [{"configuration": k, **v, "peak_rss_mib": peaks.get(k)}
                      for k, v in result["timing"].items()]
    if args.no_timing:
        result["title"] = "Accuracy by hypergradient mode and meta protocol"
        result["rows"] = [{"configuration": k, **v} for k, v in result["accuracy"].items()]
    path = args.out / ("step_time_accuracy.json" if args.no_timing else "step_time.json")
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, path)
    print(f"\nwritten to {path}")




def _provenance(title: str) -> dict:
    """Title, command line and machine, which the docs page shows with every table."""
    return {"title": title, "command": "python " + " ".join(sys.argv),
            "machine": f"{platform.platform()}, {os.cpu_count()} CPUs, "
                       f"{torch.get_num_threads()} torch threads"}

if __name__ == "__main__":
    main()
