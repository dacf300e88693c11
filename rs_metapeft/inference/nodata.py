"""Nodata at prediction: which value is nodata, which pixels it masks, what the model sees there.

Training turns nodata pixels into NaN and fills them with the band means of the training split
(:class:`~rs_metapeft.data.transforms.FillNodata`); prediction does the same with the statistics
the model carries, so a chip with a few nodata pixels is classified as in training. A pixel whose
every band is nodata is masked: it gets the output's nodata class and confidence 0, and a chip or
tile with no unmasked pixel is not classified at all. Where training converted SAR values to dB
(``data.preprocessing``, recorded in the checkpoint), :func:`model_input` converts them again.
"""

from __future__ import annotations

from typing import Any

import torch

from ..data.sar import SARPreprocessing

__all__ = ["fill_nodata", "masked_pixels", "model_input", "nodata_value", "recorded_preprocessing"]


def nodata_value(task: Any, file_nodata: float | None, override: float | None = None
                 ) -> float | None:
    """The nodata value of an input file, as training would have used it.

    Order: ``override`` (the caller's), the recipe's ``data.nodata`` recorded in the checkpoint
    (it overrode the files' own in training), the file's own, then the value the training files
    declared (recorded in the checkpoint).

    Args:
        task: a trained task; its ``data_info`` (``nodata``, ``nodata_from_recipe``) comes from
            the checkpoint or export.
        file_nodata: the file's declared nodata (``None`` when it declares none).
        override: a nodata value given for this prediction.
    """
    if override is not None:
        return override
    info = getattr(task, "data_info", None) or {}
    recorded = info.get("nodata")
    if recorded is not None and info.get("nodata_from_recipe", False):
        return recorded
    return file_nodata if file_nodata is not None else recorded


def _invalid(x: torch.Tensor, value: float | None) -> torch.Tensor:
    bad = torch.isnan(x)
    if value is not None:
        bad |= x == torch.tensor(value, dtype=x.dtype)
    return bad


def masked_pixels(x: torch.Tensor, value: float | None) -> torch.Tensor:
    """``(..., H, W)`` mask of the pixels of ``x`` (``(..., C, H, W)``) with every band nodata."""
    return _invalid(x, value).all(dim=-3)


def fill_nodata(x: torch.Tensor, value: float | None, fill: torch.Tensor) -> torch.Tensor:
    """``x`` with nodata (and NaN) band values replaced by ``fill`` (one value per band).

    Args:
        x: ``(..., C, H, W)`` raw band values.
        value: the nodata value (``None``: only NaN).
        fill: ``(C,)`` values, the model's band means (normalised to 0, as in training).
    """
    fill = fill.to(x.dtype).to(x.device).view(-1, 1, 1).expand_as(x)
    return torch.where(_invalid(x, value), fill, x)


def recorded_preprocessing(task: Any) -> SARPreprocessing | None:
    """The SAR conversion training applied (the checkpoint's or export's ``data`` record)."""
    spec = (getattr(task, "data_info", None) or {}).get("preprocessing")
    return SARPreprocessing(**spec) if spec else None


def model_input(x: torch.Tensor, value: float | None, fill: torch.Tensor,
                preprocessing: SARPreprocessing | None = None) -> torch.Tensor:
    """Raw band values as training fed them to the model: SAR conversion, then nodata filled.

    Args:
        x: ``(..., C, H, W)`` raw band values as stored.
        value: the nodata value (``None``: only NaN).
        fill: ``(C,)`` values for nodata (see :func:`fill_nodata`).
        preprocessing: the training's SAR conversion (:func:`recorded_preprocessing`), applied
            after nodata is masked, as in training.
    """
    if preprocessing is not None:
        x = torch.where(_invalid(x, value), torch.nan, x)
        x = torch.from_numpy(preprocessing.apply(x.cpu().numpy())).to(x.device)
        value = None  # nodata is NaN now; a dB value may equal the stored nodata value
    return fill_nodata(x, value, fill)
