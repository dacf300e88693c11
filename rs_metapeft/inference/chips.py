"""Classify a folder of GeoTIFF chips into a CSV of path, class, confidence, probabilities.

A multi-label model writes each chip's label set (the labels whose score reaches the label's
threshold, chosen on validation) and one score per label instead. Chips whose every pixel is
nodata are listed with ``all_nodata`` 1 and not classified.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import rasterio
import torch
from rasterio.errors import RasterioError
from torch.nn import functional as F
from tqdm.auto import tqdm

from ..bands import BandMismatchError, check_compatible
from ..data.folder import DataFileError
from ..io import atomic_write_text, refuse_existing
from ..tasks import MetaPEFTTask
from .nodata import masked_pixels, model_input, nodata_value, recorded_preprocessing

__all__ = ["predict_chips"]

_SUFFIXES = (".tif", ".tiff")


def _described_bands(src) -> list[str] | None:
    names = list(src.descriptions)
    return names if all(names) else None


class _Chip(NamedTuple):
    count: int
    names: list[str] | None
    nodata: float | None
    pixels: np.ndarray | None


def _read(path: Path, pixels: bool = True) -> _Chip:
    """Band count, band names, nodata and (with ``pixels``) the pixels of a chip.

    Raises:
        DataFileError: the file cannot be read; the message names it.
    """
    try:
        with rasterio.open(path) as src:
            return _Chip(src.count, _described_bands(src), src.nodata,
                         src.read() if pixels else None)
    except RasterioError as err:
        raise DataFileError(f"cannot read chip {path}: {err}. Replace or remove the file.") from err


def resize_to_model(x: torch.Tensor, size: int) -> torch.Tensor:
    """``x`` (``N x C x H x W``) resized (bilinear) to the ViT's one input size, if it differs."""
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x


@torch.no_grad()
def predict_chips(task: MetaPEFTTask, folder: str | os.PathLike,
                  output: str | os.PathLike = "predictions.csv", batch_size: int = 64,
                  progress: bool = True, nodata: float | None = None,
                  overwrite: bool = False) -> Path:
    """Classify every GeoTIFF chip under ``folder`` (recursively) and write a CSV.

    Every file's band count (and band names, where the file describes its bands) is checked
    against the model before any chip is classified. Nodata pixels (see
    :mod:`rs_metapeft.inference.nodata`) are filled with the model's band means, as in training,
    after the SAR conversion to dB that training applied, if any;
    a chip with nothing but nodata is not classified: its row has an empty ``class``,
    confidence 0, no probabilities and ``all_nodata`` 1.

    Args:
        task: a trained task (see :func:`~rs_metapeft.inference.load_task`).
        folder: folder of ``.tif`` chips.
        output: CSV path; columns ``path`` (relative to ``folder``), ``class``, ``confidence``,
            one probability column per class and ``all_nodata`` (1 for a chip not classified
            because every pixel is nodata, else 0). A multi-label model writes ``labels`` (the
            label set, names joined by ``;``, empty when no label reaches its threshold),
            ``num_labels`` and one score column per label in place of ``class`` and
            ``confidence`` and the probabilities.
        batch_size: chips per forward pass.
        progress: show a progress bar.
        nodata: nodata value of the chips, overriding theirs and the model's recorded one.
        overwrite: replace an existing ``output``.

    Returns:
        The CSV path.

    Raises:
        FileExistsError: ``output`` exists and ``overwrite`` is off (checked before any work).
        FileNotFoundError: no chips in ``folder``.
        DataFileError: a chip that cannot be read; the message names it.
        BandMismatchError: chips whose bands differ from the model's; the message lists them.

    """
    refuse_existing([output], overwrite)
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in _SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no GeoTIFF chips (.tif) under {folder}")
    wrong, first = [], None
    for path in files:
        count, names, _, _ = _read(path, pixels=False)
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
    fill = task.model.normalizer.mean.cpu()
    preprocessing = recorded_preprocessing(task)
    rows = {}
    for start in tqdm(range(0, len(files), batch_size), desc="predict chips", unit="batch",
                      disable=not progress):
        valid, arrays = [], []
        for path in files[start:start + batch_size]:
            chip = _read(path)
            value = nodata_value(task, chip.nodata, nodata)
            x = torch.from_numpy(chip.pixels.astype(np.float32))
            if bool(masked_pixels(x, value).all()):
                rows[path] = None  # nothing to classify
                continue
            valid.append(path)
            arrays.append(model_input(x, value, fill, preprocessing))
        if not valid:
            continue
        x = torch.cat([resize_to_model(a[None], size) for a in arrays]).to(device)
        for path, p in zip(valid, task.scores(x).cpu(), strict=True):
            rows[path] = p
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    names = task.class_names
    multilabel = bool(getattr(task, "multilabel", False))
    head = ["labels", "num_labels"] if multilabel else ["class", "confidence"]
    writer.writerow(["path", *head, *names, "all_nodata"])
    for path in files:
        p, rel = rows[path], str(path.relative_to(folder))
        if p is None:
            empty = ["", 0] if multilabel else ["", f"{0:.6f}"]
            writer.writerow([rel, *empty, *[""] * len(names), 1])
            continue
        if multilabel:
            chosen = [n for n, on in zip(names, task.label_sets(p[None])[0], strict=True) if on]
            first = [";".join(chosen), len(chosen)]
        else:
            first = [names[int(p.argmax())], f"{float(p.max()):.6f}"]
        writer.writerow([rel, *first, *(f"{float(v):.6f}" for v in p), 0])
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output, buffer.getvalue())
    return output
