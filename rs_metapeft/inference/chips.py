"""Classify a folder of GeoTIFF chips into a CSV of path, class, confidence, probabilities."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.errors import RasterioError
from torch.nn import functional as F
from tqdm.auto import tqdm

from ..bands import BandMismatchError, check_compatible
from ..data.folder import DataFileError
from ..io import atomic_write_text
from ..tasks import MetaPEFTTask

__all__ = ["predict_chips"]

_SUFFIXES = (".tif", ".tiff")


def _described_bands(src) -> list[str] | None:
    names = list(src.descriptions)
    return names if all(names) else None


def _read(path: Path, pixels: bool = True) -> tuple[int, list[str] | None, np.ndarray | None]:
    """Band count, band names and (with ``pixels``) the pixels of a chip; one error naming it."""
    try:
        with rasterio.open(path) as src:
            return src.count, _described_bands(src), src.read() if pixels else None
    except RasterioError as err:
        raise DataFileError(f"cannot read chip {path}: {err}. Replace or remove the file.") from err


def _prepare(x: torch.Tensor, size: int) -> torch.Tensor:
    # The ViT takes one input size; chips of another size are resized (bilinear) to it.
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x


@torch.no_grad()
def predict_chips(task: MetaPEFTTask, folder: str | os.PathLike,
                  output: str | os.PathLike = "predictions.csv", batch_size: int = 64,
                  progress: bool = True) -> Path:
    """Classify every GeoTIFF chip under ``folder`` (recursively) and write a CSV.

    Every file's band count (and band names, where the file describes its bands) is checked
    against the model before any chip is classified.

    Args:
        task: a trained task (see :func:`~rs_metapeft.inference.load_task`).
        folder: folder of ``.tif`` chips.
        output: CSV path; columns ``path`` (relative to ``folder``), ``class``, ``confidence``
            and one probability column per class.
        batch_size: chips per forward pass.
        progress: show a progress bar.

    Returns:
        The CSV path.

    Raises:
        FileNotFoundError: no chips in ``folder``.
        DataFileError: a chip that cannot be read; the message names it.
        BandMismatchError: chips whose bands differ from the model's; the message lists them.

    """
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in _SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no GeoTIFF chips (.tif) under {folder}")
    wrong, first = [], None
    for path in files:
        count, names, _ = _read(path, pixels=False)
        try:
            check_compatible(task.model.bands, names or count, data=str(path.relative_to(folder)))
        except BandMismatchError as err:
            wrong.append(f"{path.relative_to(folder)} ({count} bands)")
            first = first or err
    if wrong:  # every odd chip named at once, not one per run
        raise BandMismatchError(
            f"{len(wrong)} chip(s) differ: {', '.join(wrong[:5])}"
            f"{' ...' if len(wrong) > 5 else ''}. First: {first}"
        )
    size = int(task.hparams.img_size)
    device = task.device
    rows = []
    for start in tqdm(range(0, len(files), batch_size), desc="predict chips", unit="batch",
                      disable=not progress):
        batch = files[start:start + batch_size]
        arrays = []
        for path in batch:
            arrays.append(torch.from_numpy(_read(path)[2].astype(np.float32)))
        x = torch.cat([_prepare(a[None], size) for a in arrays]).to(device)
        probs = task(x).softmax(1).cpu().numpy()
        for path, p in zip(batch, probs, strict=True):
            rows.append((str(path.relative_to(folder)), task.class_names[int(p.argmax())],
                         float(p.max()), p))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["path", "class", "confidence", *task.class_names])
    for rel, name, confidence, p in rows:
        writer.writerow([rel, name, f"{confidence:.6f}", *(f"{v:.6f}" for v in p)])
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output, buffer.getvalue())
    return output
