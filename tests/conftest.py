import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a hub call would otherwise hang for ~47 s

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from rs_metapeft.data.synthetic import SyntheticSpec, generate_eurosat_like, generate_sar_twin  # noqa: E402

torch.set_num_threads(2)

TINY_SPEC = SyntheticSpec(num_classes=4, imbalance_ratio=10, max_per_class=20, val_per_class=2,
                          test_per_class=3, image_size=32, seed=0)
#: timm arguments of a two-block ViT for fast tests.
TINY_VIT = {"depth": 2}


@pytest.fixture(scope="session")
def tiny_s2_root(tmp_path_factory) -> Path:
    return generate_eurosat_like(tmp_path_factory.mktemp("s2"), TINY_SPEC)


@pytest.fixture(scope="session")
def tiny_s1_root(tmp_path_factory) -> Path:
    return generate_sar_twin(tmp_path_factory.mktemp("s1"), TINY_SPEC)
