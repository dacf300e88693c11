"""GPU variant of the efficacy and speed benchmarks for one lent H100/H200, in one process.

ViT-B/16 at 224 px in bf16 (``--gpu`` profile of ``harness.py``: 100 steps of batch 64, 4 loader
workers), the 13-band long-tailed set, one seed: the 6 main methods and 8 Optuna trials of
``efficacy.py`` (MetaPEFT with the product's outer-step schedule), then ``speed.py`` (one
round). Sized for about 6-7 minutes of device time (before the outer-step schedule became the
product's: re-measure), including the one-off generation of the 224 px synthetic set;
``gpu_bench.sh`` wraps it in a 480 s timeout. The backbone is randomly initialised unless
``--weights`` names a ViT-B/16 file (nothing can be downloaded on the device). Prints the same
tables as the CPU scripts and writes ``benchmarks/results/efficacy-gpu.json`` and
``speed-gpu.json`` (copied to ``$OUT`` when set).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import efficacy  # noqa: E402
import harness  # noqa: E402
import speed  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    """Run efficacy, then speed, with the GPU profile."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--optuna-trials", type=int, default=8)
    args = parser.parse_args(argv)
    weights = ["--weights", args.weights] if args.weights else []
    try:
        import optuna  # noqa: F401
    except ImportError:  # the device cannot reach PyPI; carry a venv that has it
        print("optuna is not installed here: the Optuna row is skipped", flush=True)
        args.optuna_trials = 0
    start = time.perf_counter()
    written = []
    efficacy.main(["--gpu", "--datasets", "s2", "--seeds", *map(str, args.seeds), "--tag", "gpu",
                   "--optuna-trials", str(args.optuna_trials), *weights])
    written.append(harness.RESULTS_DIR / "efficacy-gpu.json")
    print(f"efficacy done after {time.perf_counter() - start:.0f} s", flush=True)
    speed.main(["--gpu", "--rounds", "1", "--cycles", "3", "--tag", "gpu", *weights])
    written.append(harness.RESULTS_DIR / "speed-gpu.json")
    print(f"speed done after {time.perf_counter() - start:.0f} s", flush=True)
    out = os.environ.get("OUT")
    if out:
        for path in written:
            shutil.copy(path, Path(out) / path.name)


if __name__ == "__main__":
    main()
