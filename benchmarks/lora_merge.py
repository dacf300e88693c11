"""Merged PEFT products against the written-out ones: bare-loop step time and peak memory.

:func:`rs_metapeft.peft.lora.merged_lora_linear` computes a LoRA layer as ``x (W + S A)^T + b``
(one full-width product forward, one for the input gradient) instead of the written-out
``x W^T + b + (x A^T) S^T`` (the update at the output's width, its addition, and two input
gradients summed in backward). This script measures what that buys, in one process, side by
side: the written-out form is the same modules with :func:`merged_lora_linear` swapped for its
textbook formula, so nothing else differs. The same holds for AdaptFormer:
:func:`rs_metapeft.peft.adaptformer.adaptformer_branch` recomputes its normalised input in
backward instead of keeping it; written out, it is ``scale * Up(relu(Down(LN(x))))`` through
autograd (which keeps ``LN(x)``, a full-width activation per block).

Per configuration (gamma fixed, the task's fused AdamW on what trains): the median bare-loop
step (forward, cross-entropy, backward, optimiser step; :func:`speed.bare_step`) over
interleaved rounds, its
ratio to the floor (:func:`speed.floor_step`: the frozen network's forward and backward) and to
full fine-tuning, and the peak RSS growth of a few steps in a fresh process (CPU). The model is
``SpectralViTClassifier`` at the ``cpu`` profile's sizes (ViT-Tiny, 64 px, patch 8, three bands,
random weights: step time does not depend on them).

    python benchmarks/lora_merge.py --batch-size 64 --rounds 3 --tag cpu-b64
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
import speed  # noqa: E402
import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from rs_metapeft.models.classifier import SpectralViTClassifier  # noqa: E402
from rs_metapeft.peft import adaptformer as adaptformer_module  # noqa: E402
from rs_metapeft.peft import lora as lora_module  # noqa: E402
from rs_metapeft.peft.adapter import scaled_up  # noqa: E402
from rs_metapeft.peft.config import PeftConfig  # noqa: E402
from rs_metapeft.tasks.metapeft import OptimizerConfig  # noqa: E402

SIX = ["q", "k", "v", "o", "fc1", "fc2"]
#: configuration -> (PEFT spec, LoRA form); the floor and full fine-tuning are the references.
CONFIGS: dict[str, tuple[dict[str, Any], str | None]] = {
    "full fine-tuning": ({"method": "full"}, None),
    "LoRA q,v (rank 4), merged": ({"positions": ["q", "v"], "rank": 4}, "merged"),
    "LoRA q,v (rank 4), written out": ({"positions": ["q", "v"], "rank": 4}, "written"),
    "LoRA six, merged": ({"positions": SIX}, "merged"),
    "LoRA six, written out": ({"positions": SIX}, "written"),
    "all seven, merged": ({}, "merged"),
    "all seven, written out": ({}, "written"),
}
BASES = ("LoRA q,v (rank 4)", "LoRA six", "all seven")
FLOOR = "floor (frozen fwd+bwd)"
MERGED = lora_module.merged_lora_linear
RECOMPUTING = adaptformer_module.adaptformer_branch


def written_out(x, weight, bias, lora_A, scaled_B):
    """The textbook LoRA layer: base product plus the low-rank update at full width."""
    if not isinstance(scaled_B, torch.Tensor):  # the diagonal blocks of a block-diagonal B
        scaled_B = torch.block_diag(*scaled_B)
    return F.linear(x, weight, bias) + F.linear(F.linear(x, lora_A), scaled_B)


def adaptformer_written_out(x, norm, down, up, scale):
    """The textbook AdaptFormer branch (autograd keeps the normalised input)."""
    return scaled_up(torch.relu(down(norm(x))), up.weight, up.bias, scale)


def use_form(form: str | None) -> None:
    """Route every LoRA layer and AdaptFormer through the merged products or the textbook ones."""
    written = form == "written"
    lora_module.merged_lora_linear = written_out if written else MERGED
    adaptformer_module.adaptformer_branch = adaptformer_written_out if written else RECOMPUTING


def build(peft: dict[str, Any], img_size: int, patch: int) -> SpectralViTClassifier:
    """The classifier at the profile's sizes, gamma fixed (random backbone weights)."""
    torch.manual_seed(0)
    return SpectralViTClassifier(["B02", "B03", "B04"], 10, img_size=img_size, patch_size=patch,
                                 peft=PeftConfig(**peft)).train()


def step_times(name: str, batch: int, steps: int, skip: int, img_size: int,
               patch: int) -> list[float]:
    """Bare-loop (or floor) step times of one configuration, after ``skip`` warm-up steps."""
    peft, form = CONFIGS.get(name, ({"positions": []}, None))
    use_form(form)
    model = build(peft, img_size, patch)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = OptimizerConfig(lr=1e-4).build(params)  # the task's inner optimiser
    if name == FLOOR:
        model.requires_grad_(False)
    generator = torch.Generator().manual_seed(1)
    image = torch.randn(batch, 3, img_size, img_size, generator=generator)
    label = torch.randint(0, 10, (batch,), generator=generator)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        if name == FLOOR:
            speed.floor_step(model, image, label)
        else:
            speed.bare_step(model, optimizer, image, label)
        times.append(time.perf_counter() - start)
    use_form(None)
    return times[skip:]


def peak_rss_mib() -> float:
    """This process's peak RSS (``VmHWM``; ``ru_maxrss`` would carry the parent's peak across
    ``fork`` and ``exec``, so a child of a large process would read its parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def memory_of(name: str, batch: int, img_size: int, patch: int,
              steps: int = 3) -> dict[str, float]:
    """Peak RSS (MiB) of ``steps`` bare steps of ``name``, and the RSS before (fresh process)."""
    before = harness.current_rss_mib()
    step_times(name, batch, steps, 0, img_size, patch)
    return {"peak_mib": peak_rss_mib(), "before_fit_mib": before}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line entry point; returns the written result."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per config")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per round")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds; smoke test)")
    parser.add_argument("--no-memory", dest="memory", action="store_false")
    parser.add_argument("--memory-of", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--configs", nargs="+", default=None, metavar="BASE",
                        help="only these configurations, each both ways (default: all of "
                             "'LoRA q,v (rank 4)', 'LoRA six', 'all seven')")
    parser.add_argument("--tag", default="")
    parser.add_argument("--results", type=Path, default=None)
    args = parser.parse_args(argv)
    img_size, patch = (16, 8) if args.quick else (64, 8)
    if args.memory_of:
        print(json.dumps(memory_of(args.memory_of, args.batch_size, img_size, patch)))
        return {}
    bases = args.configs or list(BASES)
    unknown = [b for b in bases if b not in BASES]
    if unknown:
        parser.error(f"unknown --configs {unknown}; choose from {list(BASES)}")
    names = [FLOOR, "full fine-tuning",
             *(f"{b}, {form}" for b in bases for form in ("merged", "written out"))]
    times: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.rounds):
        for name in names:
            times[name] += step_times(name, args.batch_size, args.warmup + args.steps,
                                      args.warmup, img_size, patch)
    median = {n: statistics.median(t) for n, t in times.items()}
    growth = {}
    if args.memory:
        argv_base = list(argv if argv is not None else sys.argv[1:])
        for name in names[1:]:
            peak = harness.memory_in_subprocess(Path(__file__), argv_base, name)
            growth[name] = peak["peak_mib"] - peak["before_fit_mib"]
    rows = [{"configuration": n, "bare_step_ms": round(1000 * median[n], 1),
             "vs_floor": round(median[n] / median[FLOOR], 3),
             "vs_full_fine_tuning": round(median[n] / median["full fine-tuning"], 3),
             "rss_growth_mib": None if n not in growth else round(growth[n], 1)}
            for n in names]
    pairs = [{"configuration": base, "merged / written out, step":
              round(median[f"{base}, merged"] / median[f"{base}, written out"], 3),
              "merged / written out, memory": (
                  round(growth[f"{base}, merged"] / growth[f"{base}, written out"], 3)
                  if growth else None)}
             for base in bases]
    result = {
        "title": "PEFT modules: merged products against the written-out formulas"
                 + (f" ({args.tag})" if args.tag else ""),
        "command": harness.command_line(), "machine": harness.machine(),
        "batch_size": args.batch_size, "rounds": args.rounds, "steps": args.steps,
        "rows": rows, "tables": {"Merged / written out (same modules, same process)": pairs},
        "notes": (f"Bare-loop step medians over {args.rounds} interleaved rounds of {args.steps} "
                  f"timed steps (after {args.warmup} untimed) at batch {args.batch_size}, "
                  f"{img_size} px / patch {patch}, ViT-Tiny with random weights; gamma fixed, "
                  "AdamW on what trains. rss_growth_mib: peak RSS growth of 3 steps in a fresh "
                  "process. 'written out' swaps merged_lora_linear for x W^T + b + "
                  "(x A^T) S^T and changes nothing else."),
    }
    if args.results is None:
        args.results = harness.RESULTS_DIR / "quick" if args.quick else harness.RESULTS_DIR
    path = harness.write_result("lora_merge" + (f"-{args.tag}" if args.tag else ""), result,
                                args.results)
    print(harness.format_table(rows))
    print(harness.format_table(pairs))
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
