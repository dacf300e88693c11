import pytest
import torch

from rs_metapeft.data.transforms import (
    AugmentConfig,
    FillNodata,
    build_eval_transform,
    build_train_augmentation,
)


def _batch():
    torch.manual_seed(0)
    return {"image": torch.rand(6, 13, 16, 16) * 5000, "label": torch.arange(6)}


def test_flips_and_rot90_only_permute_pixels():
    batch = _batch()
    out = build_train_augmentation()(dict(batch))
    assert out["image"].shape == batch["image"].shape
    assert torch.equal(out["label"], batch["label"])
    for a, b in zip(out["image"], batch["image"], strict=True):
        # no colour change: every band keeps exactly its values (spectra are untouched)
        # (kornia rotates by an affine warp: exact up to float rounding)
        assert torch.allclose(a.flatten(1).sort(1).values, b.flatten(1).sort(1).values, atol=0.05)


def test_random_resized_crop_resizes_and_eval_resizes():
    aug = build_train_augmentation(8, AugmentConfig(resized_crop_scale=(0.5, 1.0)))
    assert aug(_batch())["image"].shape == (6, 13, 8, 8)
    assert build_eval_transform(8)(_batch())["image"].shape == (6, 13, 8, 8)
    with pytest.raises(ValueError, match="needs data.image_size"):
        build_train_augmentation(None, AugmentConfig(resized_crop_scale=(0.5, 1.0)))


def test_fill_nodata_uses_training_means_or_batch_means():
    image = torch.ones(2, 2, 4, 4)
    image[0, 1, 0, 0] = float("nan")
    filled = FillNodata([10.0, 20.0])({"image": image})["image"]
    assert filled[0, 1, 0, 0] == 20.0 and not torch.isnan(filled).any()
    assert FillNodata()({"image": image})["image"][0, 1, 0, 0] == 1.0
