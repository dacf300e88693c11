"""Scaling: MetaPEFT step time and memory as adapted positions x layers grow, and as images grow.

Grid 1 (at the profile's image size): position sets {q,v}, the six LoRA positions, the six plus
AdaptFormer, each in the last block, the last half of the blocks and all blocks.
Grid 2 (all seven positions in every block): image sizes (``--sizes``; synthetic data of that size
is generated once and cached).

Each configuration is MetaPEFT (an outer step every ``--every`` steps); only whole outer-step
cycles after the warm-up are timed, and the step time is the median cycle's time per step.
Memory: CUDA peak allocated on a GPU; on the CPU, in a fresh process per configuration, the
highest RSS sampled during the fit and its growth during training (``--no-memory`` skips these).

    python benchmarks/scaling.py [--quick | --gpu] [--weights PATH] [--sizes 32 64 96]

Prints a table and writes ``benchmarks/results/scaling[-TAG].json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
import speed  # noqa: E402
import torch  # noqa: E402

POSITION_SETS = {"q,v": ["q", "v"], "6 LoRA": speed.ALL_POSITIONS[:6],
                 "6 LoRA + AdaptFormer": speed.ALL_POSITIONS}
DEFAULT_SIZES = {"quick": [16, 32], "cpu": [32, 64, 96], "gpu": [112, 224]}


def layer_sets(blocks: int) -> dict[str, list[int]]:
    """Adapted blocks: the last one, the last half, all."""
    return {"last 1": [blocks - 1], "last half": list(range(blocks // 2, blocks)),
            "all": list(range(blocks))}


def configs(profile: harness.Profile, sizes: list[int]) -> dict[str, dict[str, Any]]:
    """name -> (overrides on top of the profile's, image size)."""
    out = {}
    for pname, positions in POSITION_SETS.items():
        for lname, layers in layer_sets(profile.blocks).items():
            out[f"{pname} x {lname}"] = {
                "positions": positions, "layers": layers, "img_size": profile.img_size,
                "modules": len(positions) * len(layers)}
    for size in sizes:
        out[f"all x all @ {size} px"] = {"positions": speed.ALL_POSITIONS, "layers": None,
                                         "img_size": size,
                                         "modules": len(speed.ALL_POSITIONS) * profile.blocks}
    return out


def overrides_of(profile: harness.Profile, spec: dict[str, Any], weights: str | None,
                 folder: Path, steps: int, every: int) -> dict[str, Any]:
    """Overrides of one configuration (smaller synthetic set: only timing matters here)."""
    sized = harness.dataclasses.replace(profile, img_size=spec["img_size"],
                                        max_per_class=min(profile.max_per_class, 100),
                                        val_per_class=2, test_per_class=2)
    base = harness.base_overrides(sized, "s2", 0, weights, folder)
    base.update({"trainer.max_steps": steps, "model.meta.enabled": True,
                 "model.meta.every_n_steps": every, "model.meta.warmup_steps": every,
                 "model.peft.positions": spec["positions"], "model.peft.layers": spec["layers"]})
    return base


def run(profile, spec, weights, steps, every):
    """Fit one configuration; return ``(cli, step_times)``."""
    with harness.run_dir() as folder:
        return harness.timed_fit(overrides_of(profile, spec, weights, Path(folder), steps, every))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line entry point; returns the written result."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    harness.add_common_arguments(parser)
    parser.add_argument("--cycles", type=int, default=2, help="timed outer-step cycles per run")
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--every", type=int, default=10, help="an outer step every N steps")
    parser.add_argument("--no-memory", dest="memory", action="store_false")
    parser.add_argument("--memory-of", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    profile = harness.profile_of(args)
    table = configs(profile, args.sizes or DEFAULT_SIZES[profile.name])
    steps, skip = speed.plan(args.every, args.cycles)
    if args.memory_of:
        cli, _ = run(profile, table[args.memory_of], args.weights, steps, args.every)
        print(json.dumps({"peak_mib": cli.rss_in_fit.peak_mib,
                          "before_fit_mib": cli.rss_in_fit.start_mib}))
        return {}
    rows = []
    for name, spec in table.items():
        _, times = run(profile, spec, args.weights, steps, args.every)
        row = {"configuration": name, "adapted_modules": spec["modules"],
               "img_size": spec["img_size"],
               "step_ms": 1000 * speed.cycle_step_time(times[skip:], args.every)}
        if torch.cuda.is_available():
            row["peak_memory_mib"] = harness.peak_memory_mib()
        elif args.memory:
            argv_ = [a for a in sys.argv[1:] if a != "--no-memory"]
            peak = harness.memory_in_subprocess(Path(__file__), argv_, name)
            row["peak_memory_mib"] = peak["peak_mib"]
            row["rss_growth_in_fit_mib"] = peak["peak_mib"] - peak["before_fit_mib"]
        rows.append(row)
        print(f"{name}: {row['step_ms']:.1f} ms", flush=True)
    result = {
        "title": f"Scaling: MetaPEFT step time and memory vs adapted modules and image size "
                 f"({profile.name} profile)",
        "command": harness.command_line(), "machine": harness.machine(), "rows": rows,
        "seeds": [0],
        "notes": (f"{profile.backbone}, batch {profile.batch_size}, {profile.precision}; "
                  f"outer step every {args.every} steps; {steps} steps per run, timed "
                  f"from step {skip}; step time = median outer-step cycle / {args.every}."),
    }
    print(harness.format_table(rows))
    name = "scaling" + (f"-{args.tag}" if args.tag else f"-{profile.name}")
    print(f"wrote {harness.write_result(name, result, args.results)}")
    return result


if __name__ == "__main__":
    main()
