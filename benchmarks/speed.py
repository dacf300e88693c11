"""Speed, side by side in one process: MetaPEFT, fixed-gamma PEFT, full fine-tuning, the floor.

* ``MetaPEFT / fixed-gamma PEFT`` (target <= 1.10): the same modules (LoRA at q, k, v, o, fc1,
  fc2 and AdaptFormer in every block), with and without the outer step every N steps. Only whole
  outer-step cycles after the warm-up are timed, so each mean holds the same share of outer steps.
  (``benchmarks/step_time.py`` of the trainer issue breaks MetaPEFT down per hypergradient mode
  and meta protocol; this script puts it next to full fine-tuning and the floor.)
* ``PEFT / full fine-tuning``: needs ``model.peft.method: full`` (skipped, with a note, where
  this checkout lacks it).
* ``PEFT / floor``: the floor is forward + backward of the frozen backbone with gradients only to
  the input of the first adapted block, nothing else; no PEFT method can be cheaper.
* Loader throughput (the train loader alone) against the training rate (images per second).

Configurations run interleaved, ``--rounds`` times, in one process; step times are medians of the
timed steps, so the ratios are what to read when the machine is shared. Peak memory: CUDA peak
allocated per configuration on a GPU; on the CPU the peak RSS of a fresh process per
configuration (the whole process: Python, libraries, data, model).

    python benchmarks/speed.py [--quick | --gpu] [--weights PATH] [--rounds 2] [--cycles 3]

Prints a table and writes ``benchmarks/results/speed[-TAG].json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

ALL_POSITIONS = ["q", "k", "v", "o", "fc1", "fc2", "adaptformer"]
#: Timed configurations: name -> overrides. ``floor`` is measured on the linear probe's model.
CONFIGS: dict[str, dict[str, Any]] = {
    "fixed-gamma PEFT": {"model.meta.enabled": False, "model.peft.positions": ALL_POSITIONS},
    "MetaPEFT": {"model.meta.enabled": True, "model.peft.positions": ALL_POSITIONS},
    "full fine-tuning": {"model.meta.enabled": False, "model.peft.method": "full"},
    "linear probe": {"model.meta.enabled": False, "model.peft.positions": []},
}
BASELINE = "fixed-gamma PEFT"
FLOOR = "floor (frozen fwd+bwd)"


def floor_step(model, image: torch.Tensor, label: torch.Tensor, first: int = 0) -> torch.Tensor:
    """Forward and backward of a frozen ViT, gradients only to the input of block ``first``."""
    bb = model.backbone
    with torch.no_grad():
        x = model.stem(model.normalizer(image))
        x = bb.norm_pre(bb.patch_drop(bb._pos_embed(bb.patch_embed(x))))
        for block in bb.blocks[:first]:
            x = block(x)
    x = x.detach().requires_grad_(True)
    h = x
    for block in bb.blocks[first:]:
        h = block(h)
    logits = model.head(bb.forward_head(bb.norm(h), pre_logits=True))
    loss = F.cross_entropy(logits.float(), label)
    loss.backward()
    return x.grad


def time_floor(cli, steps: int, skip: int, bf16: bool) -> list[float]:
    """Step times of :func:`floor_step` on the linear probe's (frozen, fitted) model."""
    model = cli.model.model
    device = cli.model.device
    for p in model.parameters():
        p.requires_grad_(False)
    model.train()
    batches = iter(cli.datamodule.train_dataloader())
    times = []
    for _ in range(steps):
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(cli.datamodule.train_dataloader())
            batch = next(batches)
        image, label = batch["image"].to(device), batch["label"].to(device)
        harness._sync()
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            floor_step(model, image, label)
        harness._sync()
        times.append(time.perf_counter() - start)
    return times[skip:]


def loader_rate(cli, batches: int) -> float:
    """Images per second of the train loader alone (decode, crop, collate)."""
    loader = iter(cli.datamodule.train_dataloader())
    count, start = 0, time.perf_counter()
    for _ in range(batches):
        try:
            count += len(next(loader)["label"])
        except StopIteration:
            loader = iter(cli.datamodule.train_dataloader())
    return count / (time.perf_counter() - start)


def plan(profile: harness.Profile, cycles: int) -> tuple[int, int]:
    """(steps, skipped) so that the timed steps are whole outer-step cycles after warm-up."""
    every = profile.meta_every
    skip = -(-max(profile.meta_warmup, every) // every) * every
    return skip + cycles * every, skip


def benchmark(args, profile: harness.Profile) -> dict[str, Any]:
    """Interleaved timing of every configuration, the floor and the loader."""
    steps, skip = plan(profile, args.cycles)
    times: dict[str, list[float]] = {}
    memory: dict[str, float] = {}
    growth: dict[str, float] = {}  # CPU: peak RSS above the pre-fit peak
    skipped: dict[str, str] = {}
    loader = None
    bf16 = profile.precision.startswith("bf16")
    for _ in range(args.rounds):
        for name, overrides in CONFIGS.items():
            why = harness.available(overrides)
            if why:
                skipped[name] = why
                continue
            with harness.run_dir() as folder:
                base = harness.base_overrides(profile, "s2", 0, args.weights, Path(folder))
                base["trainer.max_steps"] = steps
                cli, t = harness.timed_fit({**base, **overrides})
                if torch.cuda.is_available():
                    memory[name] = max(memory.get(name, 0.0), harness.peak_memory_mib())
                times.setdefault(name, []).extend(t[skip:])
                if name == "linear probe":
                    harness.reset_peak_memory()
                    times.setdefault(FLOOR, []).extend(time_floor(cli, steps, skip, bf16))
                    if torch.cuda.is_available():
                        memory[FLOOR] = max(memory.get(FLOOR, 0.0), harness.peak_memory_mib())
                if name == BASELINE and loader is None:
                    loader = loader_rate(cli, args.loader_batches)
    if not torch.cuda.is_available() and args.memory:
        for name in [*times]:
            argv = [a for a in sys.argv[1:] if a != "--no-memory"]
            peak = harness.memory_in_subprocess(Path(__file__), argv, name)
            memory[name] = peak["peak_mib"]
            growth[name] = peak["peak_mib"] - peak["before_fit_mib"]
    return {"times": times, "memory": memory, "rss_growth": growth, "skipped": skipped,
            "loader_images_s": loader, "steps": steps, "timed_from_step": skip}


def summarise(raw: dict[str, Any], batch_size: int) -> tuple[list[dict], list[dict]]:
    """Rows per configuration and the headline ratios."""
    median = {name: statistics.median(t) for name, t in raw["times"].items() if t}
    base = median.get(BASELINE)
    rows = [{"configuration": name, "median_step_ms": 1000 * m,
             "vs_fixed_gamma_peft": m / base if base else None,
             "images_per_s": batch_size / m, "steps_timed": len(raw["times"][name]),
             "peak_memory_mib": raw["memory"].get(name),
             "rss_growth_in_fit_mib": raw["rss_growth"].get(name)} for name, m in median.items()]

    def ratio(a: str, b: str) -> float | None:
        return median[a] / median[b] if a in median and b in median else None

    meta = ratio("MetaPEFT", BASELINE)
    ratios = [
        {"ratio": "MetaPEFT / fixed-gamma PEFT", "value": meta, "target": "<= 1.10",
         "status": "n/a" if meta is None else "PASS" if meta <= 1.10 else "FAIL"},
        {"ratio": "fixed-gamma PEFT / full fine-tuning",
         "value": ratio(BASELINE, "full fine-tuning")},
        {"ratio": "fixed-gamma PEFT / floor", "value": ratio(BASELINE, FLOOR)},
        {"ratio": "MetaPEFT / floor", "value": ratio("MetaPEFT", FLOOR)},
    ]
    if raw["loader_images_s"] and base:
        ratios.append({"ratio": "loader images/s / fixed-gamma PEFT training images/s",
                       "value": raw["loader_images_s"] / (batch_size / base),
                       "target": "> 1 (training, not the loader, is the bottleneck)"})
    return rows, ratios


def memory_of(args, profile: harness.Profile) -> None:
    """Subprocess mode: run one configuration once and print its peak RSS."""
    steps, _ = plan(profile, args.cycles)
    name = args.memory_of
    overrides = CONFIGS["linear probe" if name == FLOOR else name]
    with harness.run_dir() as folder:
        base = harness.base_overrides(profile, "s2", 0, args.weights, Path(folder))
        base["trainer.max_steps"] = steps
        cli, _ = harness.timed_fit({**base, **overrides})
        if name == FLOOR:
            time_floor(cli, steps, 0, False)
    print(json.dumps({"peak_mib": harness.peak_memory_mib(),
                      "before_fit_mib": cli.peak_before_fit_mib}))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line entry point; returns the written result."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    harness.add_common_arguments(parser)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cycles", type=int, default=3, help="timed outer-step cycles per run")
    parser.add_argument("--loader-batches", type=int, default=20)
    parser.add_argument("--no-memory", dest="memory", action="store_false",
                        help="CPU: skip the per-configuration peak-RSS subprocesses")
    parser.add_argument("--memory-of", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    profile = harness.profile_of(args)
    if args.memory_of:
        memory_of(args, profile)
        return {}
    raw = benchmark(args, profile)
    rows, ratios = summarise(raw, profile.batch_size)
    skipped = [f"{name}: {why}" for name, why in raw["skipped"].items()]
    result = {
        "title": f"Speed: MetaPEFT vs fixed-gamma PEFT, full fine-tuning and the floor "
                 f"({profile.name} profile)",
        "command": harness.command_line(), "machine": harness.machine(), "rows": rows,
        "ratios": ratios, "raw": raw, "seeds": [0],
        "notes": (f"{profile.backbone} at {profile.img_size} px, batch {profile.batch_size}, "
                  f"{profile.precision}; outer step every {profile.meta_every} steps; "
                  f"{args.rounds} interleaved rounds of {raw['steps']} steps, timed from step "
                  f"{raw['timed_from_step']}; medians. Ratios: "
                  + "; ".join(f"{r['ratio']} = {harness.fmt(r['value'])}"
                              + (f" ({r['status']}, target {r['target']})" if "status" in r else "")
                              for r in ratios)
                  + ("; skipped: " + "; ".join(skipped) if skipped else "")),
    }
    print(harness.format_table(rows))
    print(harness.format_table(ratios))
    for line in skipped:
        print(f"SKIPPED {line}")
    name = "speed" + (f"-{args.tag}" if args.tag else f"-{profile.name}")
    print(f"wrote {harness.write_result(name, result, args.results)}")
    return result


if __name__ == "__main__":
    main()
