from pathlib import Path

import pytest

from .fakes import make_fake_bigearthnet


@pytest.fixture(scope="session")
def bigearthnet_root(tmp_path_factory) -> Path:
    """A small synthetic BigEarthNet v1 (12 / 4 / 4 patches of 12 x 12 pixels), made once."""
    return make_fake_bigearthnet(tmp_path_factory.mktemp("bigearthnet"))


@pytest.fixture(scope="session")
def bigearthnet_v2_root(tmp_path_factory) -> Path:
    """The same patches in BigEarthNet v2's layout (metadata.parquet, 19 labels), made once."""
    return make_fake_bigearthnet(tmp_path_factory.mktemp("bigearthnet_v2"), version=2)
