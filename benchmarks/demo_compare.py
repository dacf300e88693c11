"""MetaPEFT against the same run with meta off (same recipe, seed and steps).

Usage:
    python benchmarks/demo_compare.py [--recipe demo] [--set key=value ...] [--out FILE]

Prints overall / class-mean / group accuracy and wall time of both runs and writes JSON
(default benchmarks/results/demo_compare.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rs_metapeft import fit  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="demo")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="recipe override, e.g. --set model.loss=logit_adjusted")
    parser.add_argument("--out", default="benchmarks/results/demo_compare.json")
    args = parser.parse_args()
    overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    rows = {}
    for name, meta in (("MetaPEFT", True), ("fixed gamma (meta off)", False)):
        root = f"runs/compare/{'meta' if meta else 'fixed'}"
        start = time.perf_counter()
        report = fit(args.recipe, {**overrides, "model.meta.enabled": meta,
                                   "trainer.default_root_dir": root, "model.report_dir": root})
        rows[name] = {"wall_s": time.perf_counter() - start, **{
            k: report[k] for k in ("overall_accuracy", "class_mean_accuracy", "macro_f1",
                                   "group_accuracy", "gamma", "meta")}}
    print(f"\n{'method':<24} {'overall':>8} {'class-mean':>10} {'macro-F1':>8} {'many':>6} "
          f"{'medium':>7} {'few':>6} {'wall s':>7}")
    for name, r in rows.items():
        g = r["group_accuracy"]
        acc, cls_acc = 100 * r["overall_accuracy"], 100 * r["class_mean_accuracy"]
        print(f"{name:<24} {acc:8.1f} {cls_acc:10.1f} "
              f"{100 * r['macro_f1']:8.1f} {100 * g['many']:6.1f} {100 * g['medium']:7.1f} "
              f"{100 * g['few']:6.1f} {r['wall_s']:7.0f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = [{"method": name, "overall": r["overall_accuracy"],
              "class_mean": r["class_mean_accuracy"], "macro_f1": r["macro_f1"],
              **r["group_accuracy"], "wall_s": r["wall_s"]} for name, r in rows.items()]
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({
        "title": "Demo: MetaPEFT against the same run with meta off",
        "command": "python " + " ".join(sys.argv),
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs",
        "recipe": args.recipe, "overrides": overrides, "rows": table, "runs": rows,
    }, indent=2))
    os.replace(tmp, out)
    print(f"written {out}")


if __name__ == "__main__":
    main()
