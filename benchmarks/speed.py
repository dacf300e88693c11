"""Speed, side by side in one process: MetaPEFT, fixed-gamma PEFT, full fine-tuning, the floor.

* ``MetaPEFT / fixed-gamma PEFT`` (target <= 1.10): the same modules (LoRA at q, k, v, o, fc1,
  fc2 and AdaptFormer in every block), with and without the outer step every ``--every`` (10)
  steps; MetaPEFT as the demo recipe has it (exact one-step unrolled), with the Hessian-vector
  product on 8 images of the batch (``model.meta.hvp_batch_size``), and first-order. Only whole
  outer-step cycles after the warm-up are timed; a configuration's step time is the median
  cycle's time over its length, so every figure holds the same share of outer steps (a median of
  single steps would miss the outer steps altogether).
  (``benchmarks/step_time.py`` of the trainer issue breaks MetaPEFT down per hypergradient mode
  and meta protocol; this script puts it next to full fine-tuning and the floor.)
* ``PEFT / full fine-tuning``: needs ``model.peft.method: full`` (skipped, with a note, where
  this checkout lacks it).
* ``PEFT / floor``: the floor is forward + backward of the frozen backbone with gradients only to
  the input of the first adapted block, nothing else; no PEFT method can be cheaper.
* The PEFT cost floor (gamma fixed): LoRA q,v (rank 4), AdaptFormer only, LoRA at all six
  positions and all seven (``fixed-gamma PEFT``) against the floor and full fine-tuning, with
  model FLOP utilisation on a GPU; ``compiled`` rows run the inner step through
  ``torch.compile`` (``model.compile_inner_step``; the compilation falls in the untimed warm-up).
* Loader throughput (the train loader alone) against the training rate (images per second).

Configurations run interleaved, ``--rounds`` times, in one process; the ratios are what to read
when the machine is shared. Peak memory: CUDA peak
allocated per configuration on a GPU; on the CPU, per configuration in a fresh process, the
highest resident set size sampled during the fit and its growth over the RSS at the fit's start.

    python benchmarks/speed.py [--quick | --gpu] [--weights PATH] [--rounds 2] [--cycles 3]
        [--batch-size 64]

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

LORA_SIX = ["q", "k", "v", "o", "fc1", "fc2"]
ALL_POSITIONS = [*LORA_SIX, "adaptformer"]
FIXED = {"model.meta.enabled": False}
#: Timed configurations: name -> overrides. ``floor`` is measured on the linear probe's model.
CONFIGS: dict[str, dict[str, Any]] = {
    "fixed-gamma PEFT": {"model.meta.enabled": False, "model.peft.positions": ALL_POSITIONS},
    "MetaPEFT": {"model.meta.enabled": True, "model.peft.positions": ALL_POSITIONS},
    "MetaPEFT, HVP on 8 images": {"model.meta.enabled": True,
                                  "model.peft.positions": ALL_POSITIONS,
                                  "model.meta.hvp_batch_size": 8},
    "MetaPEFT first_order": {"model.meta.enabled": True, "model.peft.positions": ALL_POSITIONS,
                             "model.meta.hypergradient": "first_order"},
    "full fine-tuning": {**FIXED, "model.peft.method": "full"},
    "linear probe": {**FIXED, "model.peft.positions": []},
    # the PEFT cost-floor rows (gamma fixed): one family at a time, then all six LoRA positions
    "LoRA q,v (rank 4)": {**FIXED, "model.peft.positions": ["q", "v"], "model.peft.rank": 4},
    "AdaptFormer only": {**FIXED, "model.peft.positions": ["adaptformer"]},
    "LoRA q,k,v,o,fc1,fc2": {**FIXED, "model.peft.positions": LORA_SIX},
    # opt-in torch.compile of the inner step (compilation happens in the untimed warm-up)
    "fixed-gamma PEFT, compiled": {**FIXED, "model.peft.positions": ALL_POSITIONS,
                                   "model.compile_inner_step": True},
    "MetaPEFT, compiled inner step": {"model.meta.enabled": True,
                                      "model.peft.positions": ALL_POSITIONS,
                                      "model.compile_inner_step": True},
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


def bare_step(model, optimizer, image: torch.Tensor, label: torch.Tensor) -> None:
    """One inner step without Lightning: forward, cross-entropy, backward, optimiser step."""
    loss = F.cross_entropy(model(image).float(), label)
    loss.backward()
    if optimizer is not None:
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def _time_steps(cli, steps: int, skip: int, bf16: bool, step) -> list[float]:
    """Times of ``step(image, label)`` over the train loader's batches, after ``skip`` steps."""
    device = cli.model.device
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
            step(image, label)
        harness._sync()
        times.append(time.perf_counter() - start)
    return times[skip:]


def time_floor(cli, steps: int, skip: int, bf16: bool) -> list[float]:
    """Step times of :func:`floor_step` on the linear probe's (frozen, fitted) model."""
    model = cli.model.model
    for p in model.parameters():
        p.requires_grad_(False)
    model.train()
    return _time_steps(cli, steps, skip, bf16, lambda x, y: floor_step(model, x, y))


def time_bare(cli, steps: int, skip: int, bf16: bool) -> list[float]:
    """Step times of :func:`bare_step` on a fitted gamma-fixed model (the task's own inner
    optimiser, fused AdamW, on what trains).

    The floor is a bare loop too, so ``bare / floor`` compares like with like: the Lightning
    step's own work (logging, metrics, the loss's long-tail terms, hooks) is in neither.
    A compiled inner step (``model.compile_inner_step``) is timed compiled.
    """
    task = cli.model
    model = task.model
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = task.optim_config.build(params) if params else None
    compiled = task.__dict__.get("_compiled_model")  # not `or`: a compiled module has no len()
    forward = compiled if compiled is not None else model
    model.train()
    return _time_steps(cli, steps, skip, bf16, lambda x, y: bare_step(forward, optimizer, x, y))


#: Dense bf16 peak of the GPUs this project is lent (TFLOP/s), for model FLOP utilisation.
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}


def forward_flops_per_image(model, img_size: int) -> float:
    """FLOPs of one image's forward pass (PyTorch's FLOP counter, matrix products)."""
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    image = torch.rand(1, len(model.bands), img_size, img_size, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(image)
    return float(counter.get_total_flops())


def peak_tflops(override: float | None) -> float | None:
    """The device's dense bf16 peak: ``override``, else looked up by CUDA device name."""
    if override:
        return override
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


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


def plan(every: int, cycles: int) -> tuple[int, int]:
    """(steps, skipped) so that the timed steps are whole outer-step cycles after warm-up.

    The outer-step warm-up is ``every`` steps too, so outer steps fall on steps ``k * every``.
    """
    return every + cycles * every, every


def configured(name: str, every: int) -> dict[str, Any]:
    """The overrides of configuration ``name`` at this profile and outer-step interval."""
    return {**CONFIGS[name], "model.meta.every_n_steps": every, "model.meta.warmup_steps": every}


def cycle_step_time(times: list[float], every: int) -> float:
    """Median over whole outer-step cycles of a cycle's time, per step."""
    cycles = [sum(times[i:i + every]) for i in range(0, len(times) - every + 1, every)]
    return statistics.median(cycles) / every if cycles else statistics.median(times)


def benchmark(args, profile: harness.Profile) -> dict[str, Any]:
    """Interleaved timing of every configuration, the floor and the loader."""
    steps, skip = plan(args.every, args.cycles)
    times: dict[str, list[float]] = {}
    bare: dict[str, list[float]] = {}  # the same models in a loop without Lightning
    memory: dict[str, float] = {}
    growth: dict[str, float] = {}  # CPU: peak RSS in the fit above the RSS at its start
    skipped: dict[str, str] = {}
    loader = None
    flops = None
    bf16 = profile.precision.startswith("bf16")
    for _ in range(args.rounds):
        for name in args.configs:
            overrides = configured(name, args.every)
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
                if not overrides.get("model.meta.enabled"):
                    bare.setdefault(name, []).extend(time_bare(cli, steps, skip, bf16))
                if name == "linear probe":
                    harness.reset_peak_memory()
                    times.setdefault(FLOOR, []).extend(time_floor(cli, steps, skip, bf16))
                    if torch.cuda.is_available():
                        memory[FLOOR] = max(memory.get(FLOOR, 0.0), harness.peak_memory_mib())
                if name == BASELINE and loader is None:
                    loader = loader_rate(cli, args.loader_batches)
                    flops = forward_flops_per_image(cli.model.model, profile.img_size)
    if not torch.cuda.is_available() and args.memory:
        for name in [*times]:
            argv = [a for a in sys.argv[1:] if a != "--no-memory"]
            peak = harness.memory_in_subprocess(Path(__file__), argv, name)
            memory[name] = peak["peak_mib"]
            growth[name] = peak["peak_mib"] - peak["before_fit_mib"]
    return {"times": times, "bare_times": bare, "memory": memory, "rss_growth": growth,
            "skipped": skipped, "loader_images_s": loader, "steps": steps, "timed_from_step": skip,
            "forward_flops_per_image": flops, "peak_tflops": peak_tflops(args.peak_tflops),
            "every": args.every}


def _mfu(raw: dict[str, Any], images_per_s: float) -> float | None:
    """Model FLOP utilisation: 3 x forward FLOPs per image (forward + backward, the usual
    convention, whatever trains) times images per second, over the device's peak."""
    flops, peak = raw.get("forward_flops_per_image"), raw.get("peak_tflops")
    return 3 * flops * images_per_s / (peak * 1e12) if flops and peak else None


def summarise(raw: dict[str, Any], batch_size: int) -> tuple[list[dict], list[dict]]:
    """Rows per configuration and the headline ratios."""
    # Runs are concatenated round by round; each holds whole cycles, so cycles never straddle.
    median = {name: cycle_step_time(t, raw["every"]) for name, t in raw["times"].items() if t}
    # The floor is a bare loop; gamma-fixed configurations are timed in one as well.
    bare = {name: cycle_step_time(t, raw["every"])
            for name, t in raw.get("bare_times", {}).items() if t}
    if FLOOR in median:
        bare[FLOOR] = median[FLOOR]
    base = median.get(BASELINE)
    floor = bare.get(FLOOR)
    rows = [{"configuration": name, "step_ms": 1000 * m,
             "vs_fixed_gamma_peft": m / base if base else None,
             "bare_step_ms": 1000 * bare[name] if name in bare else None,
             "bare_vs_floor": bare[name] / floor if name in bare and floor else None,
             "images_per_s": batch_size / m, "steps_timed": len(raw["times"][name]),
             "model_flop_utilisation": _mfu(raw, batch_size / m),
             "peak_memory_mib": raw["memory"].get(name),
             "rss_growth_in_fit_mib": raw["rss_growth"].get(name)} for name, m in median.items()]

    def ratio(a: str, b: str, times: dict[str, float] = median) -> float | None:
        return times[a] / times[b] if a in times and b in times else None

    ratios = []
    for meta_name in [n for n in median if n.startswith("MetaPEFT")]:
        meta = ratio(meta_name, BASELINE)
        ratios.append({"ratio": f"{meta_name} / fixed-gamma PEFT", "value": meta,
                       "target": "<= 1.10", "status": "PASS" if meta <= 1.10 else "FAIL"})
    # The cost-floor targets compare bare loops (the definition); the same ratios of
    # whole Lightning steps follow for the record (they hold the task's own per-step work).
    ratios += [
        _target("fixed-gamma PEFT / full fine-tuning (bare loop)",
                ratio(BASELINE, "full fine-tuning", bare), 1.0, strict=True),
        _target("fixed-gamma PEFT / floor (bare loop)", ratio(BASELINE, FLOOR, bare), 1.20),
        _target("LoRA q,v (rank 4) / floor (bare loop)",
                ratio("LoRA q,v (rank 4)", FLOOR, bare), 1.05),
        {"ratio": "AdaptFormer only / floor (bare loop)",
         "value": ratio("AdaptFormer only", FLOOR, bare)},
        {"ratio": "LoRA q,k,v,o,fc1,fc2 / floor (bare loop)",
         "value": ratio("LoRA q,k,v,o,fc1,fc2", FLOOR, bare)},
        {"ratio": "fixed-gamma PEFT / full fine-tuning (Lightning step)",
         "value": ratio(BASELINE, "full fine-tuning")},
        {"ratio": "fixed-gamma PEFT (Lightning step) / floor", "value": ratio(BASELINE, FLOOR)},
        {"ratio": "linear probe (Lightning step) / floor", "value": ratio("linear probe", FLOOR)},
        {"ratio": "MetaPEFT / floor", "value": ratio("MetaPEFT", FLOOR)},
    ]
    step_lists = {**raw["times"], **raw.get("bare_times", {})}  # bare loops where timed
    for row in ratios:  # a 95 % interval for every ratio of two step times
        if row["value"] is None or " / " not in row["ratio"]:
            continue
        a, b = (FLOOR if part.startswith("floor") else
                part.removesuffix(" (bare loop)").removesuffix(" (Lightning step)")
                for part in row["ratio"].split(" / "))
        if a in step_lists and b in step_lists:
            meta = a.startswith("MetaPEFT")
            times = raw["times"] if meta or "(Lightning step)" in row["ratio"] else step_lists
            # an outer step falls once a cycle: MetaPEFT's ratios resample whole cycles
            row["interval_95"] = ratio_interval(times[a], times[b],
                                                block=raw["every"] if meta else 1)
    growth = raw["rss_growth"] or raw["memory"]
    if BASELINE in growth and "full fine-tuning" in growth:
        ratios.append(_target("fixed-gamma PEFT memory growth / full fine-tuning's",
                              growth[BASELINE] / max(growth["full fine-tuning"], 1e-9), 1.0))
    if raw["loader_images_s"] and base:
        ratios.append({"ratio": "loader images/s / fixed-gamma PEFT training images/s",
                       "value": raw["loader_images_s"] / (batch_size / base),
                       "target": "> 1 (training, not the loader, is the bottleneck)"})
    return rows, ratios


def ratio_interval(a: list[float], b: list[float], block: int = 1, draws: int = 2000,
                   seed: int = 0) -> list[float] | None:
    """95 % bootstrap interval of the ratio of median step times, ``a`` over ``b``.

    Blocks of ``block`` consecutive steps (1: single steps; an outer-step cycle for MetaPEFT)
    are resampled and each block's mean is a step time, as :func:`cycle_step_time` reads it.
    Steps within a run are not independent (a slow minute slows several), so the interval is
    a lower bound on the noise, not more.
    """
    ta, tb = (torch.tensor(t[:len(t) - len(t) % block], dtype=torch.float64)
              .view(-1, block).mean(dim=1) for t in (a, b))
    if len(ta) < 2 or len(tb) < 2:
        return None
    generator = torch.Generator().manual_seed(seed)
    pick_a = torch.randint(len(ta), (draws, len(ta)), generator=generator)
    pick_b = torch.randint(len(tb), (draws, len(tb)), generator=generator)
    ratios = ta[pick_a].median(dim=1).values / tb[pick_b].median(dim=1).values
    low, high = torch.quantile(ratios, torch.tensor([0.025, 0.975], dtype=torch.float64))
    return [round(float(low), 4), round(float(high), 4)]


def _target(name: str, value: float | None, limit: float, strict: bool = False) -> dict:
    """A ratio row with its target: ``value`` at most ``limit`` (below it when ``strict``)."""
    ok = value is not None and (value < limit if strict else value <= limit)
    return {"ratio": name, "value": value, "target": f"{'<' if strict else '<='} {limit:.2f}",
            "status": "n/a" if value is None else ("PASS" if ok else "FAIL")}


def memory_of(args, profile: harness.Profile) -> None:
    """Subprocess mode: run one configuration once and print its peak RSS."""
    steps = args.every + 1  # warm-up, then the first outer step: each step kind runs once
    name = args.memory_of
    overrides = configured("linear probe" if name == FLOOR else name, args.every)
    with harness.run_dir() as folder:
        base = harness.base_overrides(profile, "s2", 0, args.weights, Path(folder))
        base["trainer.max_steps"] = steps
        cli, _ = harness.timed_fit({**base, **overrides})
        rss = cli.rss_in_fit
        if name == FLOOR:  # the floor's own steps, on the fitted linear probe's model
            with harness.RSSSampler() as rss:
                time_floor(cli, steps, 0, False)
    print(json.dumps({"peak_mib": rss.peak_mib, "before_fit_mib": rss.start_mib}))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line entry point; returns the written result."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    harness.add_common_arguments(parser)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS),
                        metavar="NAME", help="configurations to time (default: all; the floor "
                        f"runs with 'linear probe'): {list(CONFIGS)}")
    parser.add_argument("--cycles", type=int, default=3, help="timed outer-step cycles per run")
    parser.add_argument("--every", type=int, default=10,
                        help="an outer step every N inner steps (the target's setting)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="training batch (meta batch: half of it); default: the profile's")
    parser.add_argument("--loader-batches", type=int, default=20)
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="device peak (TFLOP/s) for model FLOP utilisation; default: looked "
                        f"up by GPU name ({PEAK_BF16_TFLOPS}), none on the CPU")
    parser.add_argument("--no-memory", dest="memory", action="store_false",
                        help="CPU: skip the per-configuration peak-RSS subprocesses")
    parser.add_argument("--memory-of", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    profile = harness.profile_of(args)
    if args.batch_size:
        profile = harness.dataclasses.replace(profile, batch_size=args.batch_size,
                                              meta_batch_size=max(args.batch_size // 2, 1))
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
                  f"{profile.precision}; outer step every {args.every} steps; "
                  f"{args.rounds} interleaved rounds of {raw['steps']} steps, timed from step "
                  f"{raw['timed_from_step']}; step time = median outer-step cycle / "
                  f"{args.every}. Ratios: "
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
