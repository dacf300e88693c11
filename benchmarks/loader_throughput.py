"""Loader throughput against the training step's consumption rate, measured side by side.

Writes two chip folders (13-band 64x64 uint16 Sentinel-2 GeoTIFFs read by ``GeoTiffFolder``, and
2-band 64x64 float32 SAR GeoTIFFs), times ``DataLoader`` over each with 0, 1 and 2 workers, and
times the training step of ViT-Tiny (64 px, patch 8, LoRA on q/k/v/o/fc1/fc2 plus AdaptFormer,
AdamW) on the same machine in the same run. The target: the loader with 2 workers delivers at
least 5x what training consumes.

    PYTHONPATH=$PWD python benchmarks/loader_throughput.py [--chips 512] [--weights PATH]

Prints a table and writes ``benchmarks/results/loader_throughput.json``. On a shared CPU the
absolute rates are noisy; the ratios are measured back to back.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from rs_metapeft.data.folder import GeoTiffFolder
from rs_metapeft.models import SpectralViTClassifier
from rs_metapeft.peft import PeftConfig

S2_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12",
            "B8A"]
SAR_BANDS = ["VV", "VH"]
RESULTS = Path(__file__).resolve().parent / "results"


def write_chips(root: Path, n: int, bands: list[str], dtype: str, size: int = 64) -> Path:
    """``n`` chips over 4 class folders, with band descriptions."""
    import rasterio
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / f"class{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        if dtype == "uint16":
            data = rng.integers(0, 10000, (len(bands), size, size), dtype=np.uint16)
        else:
            data = rng.normal(-12, 4, (len(bands), size, size)).astype(np.float32)
        profile = dict(driver="GTiff", height=size, width=size, count=len(bands), dtype=dtype,
                       crs=CRS.from_epsg(32632), transform=from_origin(5e5, 5e6, 10, 10))
        with rasterio.open(folder / f"chip{i}.tif", "w", **profile) as dst:
            dst.write(data)
            for b, name in enumerate(bands, start=1):
                dst.set_band_description(b, name)
    return root


def loader_rate(dataset, workers: int, batch_size: int, epochs: int = 2) -> float:
    """Chips per second over ``epochs`` passes (worker start-up excluded: first batch untimed)."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                        persistent_workers=workers > 0, drop_last=True)
    it = iter(loader)
    next(it)
    start, seen = time.perf_counter(), 0
    for batch in it:
        seen += batch["image"].shape[0]
    for _ in range(epochs - 1):
        for batch in loader:
            seen += batch["image"].shape[0]
    return seen / (time.perf_counter() - start)


def train_rate(bands: list[str], batch_size: int, steps: int, weights: str | None) -> float:
    """Images per second of the inner training step (forward, backward, AdamW step)."""
    model = SpectralViTClassifier(
        bands, 10, "vit_tiny_patch16_224", weights, 64, 8,
        PeftConfig(positions=["q", "k", "v", "o", "fc1", "fc2", "adaptformer"], rank=4),
    )
    model.normalizer.set_statistics([0.0] * len(bands), [1.0] * len(bands))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    x = torch.randn(batch_size, len(bands), 64, 64)
    y = torch.randint(0, 10, (batch_size,))

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    """Run the benchmark, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chips", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=6)
    parser.add_argument("--weights", default=None, help="backbone weights (speed is the same)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(max(os.cpu_count() or 1, 1))

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sets = {
            "S2 13-band uint16 GeoTIFF": (write_chips(Path(tmp, "s2"), args.chips, S2_BANDS,
                                                      "uint16"), S2_BANDS),
            "S1 2-band float32 GeoTIFF": (write_chips(Path(tmp, "s1"), args.chips, SAR_BANDS,
                                                      "float32"), SAR_BANDS),
        }
        for name, (root, bands) in sets.items():
            dataset = GeoTiffFolder(root, bands=bands, scan=False)
            t0 = time.perf_counter()
            dataset.scan()
            scan_rate = len(dataset) / (time.perf_counter() - t0)
            train = train_rate(bands, 32, args.train_steps, args.weights)
            for workers in args.workers:
                rate = loader_rate(dataset, workers, args.batch_size)
                rows.append({
                    "data": name, "workers": workers, "loader_chips_per_s": rate,
                    "chips_per_s_per_worker": rate / max(workers, 1),
                    "train_img_per_s": train, "ratio": rate / train,
                    "scan_chips_per_s": scan_rate,
                })
    header = f"{'data':<28}{'workers':>8}{'loader/s':>10}{'per wkr':>10}{'train/s':>9}{'ratio':>7}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['data']:<28}{r['workers']:>8}{r['loader_chips_per_s']:>10.0f}"
              f"{r['chips_per_s_per_worker']:>10.0f}{r['train_img_per_s']:>9.1f}{r['ratio']:>7.1f}")
    verdict = all(r["ratio"] >= 5 for r in rows if r["workers"] == 2)
    print(f"\nloader >= 5x training with 2 workers: {'yes' if verdict else 'NO'}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "loader_throughput.json"
    tmp_out = out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps({
        "title": "Loader throughput against the training rate",
        "command": "python " + " ".join(sys.argv),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "torch_threads": torch.get_num_threads()},
        "args": vars(args), "rows": rows, "target_met": verdict,
    }, indent=2))
    os.replace(tmp_out, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
