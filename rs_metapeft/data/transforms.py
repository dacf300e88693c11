"""On-device batch augmentation with kornia, suited to remote sensing.

Overhead imagery has no canonical "up", so flips and 90-degree rotations are label-preserving;
a random resized crop adds scale variation. There is deliberately no colour jitter: on
multispectral or SAR bands it would distort spectra and backscatter. Normalisation is not done
here: the model's ``BandNormalizer`` applies the training statistics (TorchGeo's mean 0 /
std 255 default is never used). Nodata pixels (NaN after reading) are filled with the training
mean of their band, which the normaliser maps to 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import kornia.augmentation as K
import torch
from torch import nn

__all__ = ["AugmentConfig", "FillNodata", "build_eval_transform", "build_train_augmentation"]


@dataclass
class AugmentConfig:
    """Training augmentation options (``data.augment_options`` in recipes).

    Attributes:
        flips: random horizontal and vertical flips.
        rot90: random rotations by multiples of 90 degrees.
        resized_crop_scale: ``[min, max]`` area share of a random resized crop, or ``None``.
    """

    flips: bool = True
    rot90: bool = True
    resized_crop_scale: tuple[float, float] | None = None


class FillNodata(nn.Module):
    """Replace NaN (nodata) pixels of ``batch["image"]`` by a per-band value, on device.

    Args:
        values: one fill value per band (the training mean); ``None`` uses the batch's own
            per-band mean of valid pixels (when no training statistics are at hand).
    """

    def __init__(self, values: Sequence[float] | None = None) -> None:
        super().__init__()
        self.values = None if values is None else torch.as_tensor(list(values), dtype=torch.float32)

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Return the batch with NaN pixels filled (a new dict; the input is not modified)."""
        image = batch["image"]
        nan = torch.isnan(image)
        if not nan.any():
            return batch
        if self.values is not None:
            fill = self.values.to(image.device, image.dtype)[None, :, None, None]
        else:
            fill = image.transpose(0, 1).reshape(image.shape[1], -1).nanmean(1)
            fill = torch.nan_to_num(fill)[None, :, None, None]
        return {**batch, "image": torch.where(nan, fill.expand_as(image), image)}


def build_train_augmentation(
    image_size: int | None = None, config: AugmentConfig | None = None
) -> nn.Module:
    """The training batch augmentation.

    Args:
        image_size: output size of the random resized crop (or of a plain resize when no crop is
            configured); ``None`` keeps the chip size.
        config: options; defaults to flips and 90-degree rotations.

    Raises:
        ValueError: a resized crop without an output size.
    """
    config = config or AugmentConfig()
    ops: list[nn.Module] = []
    if config.flips:
        ops += [K.RandomHorizontalFlip(), K.RandomVerticalFlip()]
    if config.rot90:
        ops.append(K.RandomRotation90(times=(0, 3)))
    if config.resized_crop_scale is not None:
        if image_size is None:
            raise ValueError("data.augment_options.resized_crop_scale needs data.image_size")
        scale = tuple(config.resized_crop_scale)
        ops.append(K.RandomResizedCrop((image_size, image_size), scale=scale))
    elif image_size is not None:
        ops.append(K.Resize((image_size, image_size)))
    if not ops:
        return nn.Identity()
    return K.AugmentationSequential(*ops, data_keys=None, keepdim=True)


def build_eval_transform(image_size: int | None = None) -> nn.Module:
    """Validation/test transform: a resize to ``image_size``, or nothing."""
    if image_size is None:
        return nn.Identity()
    resize = K.Resize((image_size, image_size))
    return K.AugmentationSequential(resize, data_keys=None, keepdim=True)
