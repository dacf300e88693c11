import numpy as np
import pytest
from torch.utils.data import DataLoader

from rs_metapeft.data import SyntheticEuroSATDataModule
from rs_metapeft.data.samplers import ClassAwareSampler, build_sampler, class_probabilities
from tests.conftest import TINY_SPEC

TARGETS = np.repeat(np.arange(3), [80, 16, 4])


def _class_share(sampler):
    drawn = TARGETS[np.fromiter(iter(sampler), dtype=np.int64)]
    return np.bincount(drawn, minlength=3) / len(drawn)


def test_probability_profiles():
    assert np.allclose(class_probabilities([80, 16, 4], "instance"), [0.8, 0.16, 0.04])
    assert np.allclose(class_probabilities([80, 16, 4], "class_balanced"), [1 / 3] * 3)
    sq = np.sqrt([80, 16, 4])
    assert np.allclose(class_probabilities([80, 16, 4], "sqrt"), sq / sq.sum())
    assert class_probabilities([5, 0, 5], "class_balanced").tolist() == [0.5, 0.0, 0.5]


def test_class_balanced_draws_classes_evenly_and_repeatably():
    sampler = ClassAwareSampler(TARGETS, "class_balanced", num_samples=6000, seed=3)
    assert np.allclose(_class_share(sampler), 1 / 3, atol=0.03)
    assert list(sampler) == list(ClassAwareSampler(TARGETS, "class_balanced", 6000, seed=3))
    sampler.set_epoch(1)
    assert list(sampler) != list(ClassAwareSampler(TARGETS, "class_balanced", 6000, seed=3))


def test_progressive_moves_from_instance_to_balanced():
    sampler = ClassAwareSampler(TARGETS, "progressive", num_samples=6000, total_epochs=5)
    first = _class_share(sampler)
    sampler.set_epoch(4)
    last = _class_share(sampler)
    assert abs(first[0] - 0.8) < 0.03 and np.allclose(last, 1 / 3, atol=0.03)


def test_unknown_sampler_lists_the_valid_ones():
    assert build_sampler("shuffle", TARGETS) is None
    with pytest.raises(ValueError, match="class_balanced, sqrt, progressive"):
        build_sampler("oversample", TARGETS)


def test_datamodule_uses_the_named_sampler(tiny_s2_root):
    dm = SyntheticEuroSATDataModule(root=str(tiny_s2_root), num_classes=4, batch_size=8,
                                    sampler="sqrt", sampler_epochs=3)
    dm.spec = TINY_SPEC
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader, DataLoader) and isinstance(loader.sampler, ClassAwareSampler)
    assert loader.sampler.kind == "sqrt" and len(loader.sampler) == len(dm.train_dataset)
    with pytest.raises(ValueError, match="data.sampler"):
        SyntheticEuroSATDataModule(root=str(tiny_s2_root), sampler="balanced")
