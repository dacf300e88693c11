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


def tiny_twin(recipe: dict, run_dir: Path, data_root: Path, **data) -> dict:
    """A CPU-sized twin of a synthetic-data recipe reading ``data_root`` (TINY_SPEC sizes)."""
    from rs_metapeft.recipes import shrink_recipe

    sizes = dict(root=str(data_root), num_classes=TINY_SPEC.num_classes,
                 max_per_class=TINY_SPEC.max_per_class, val_per_class=TINY_SPEC.val_per_class,
                 test_per_class=TINY_SPEC.test_per_class, image_size=TINY_SPEC.image_size,
                 synthetic_imbalance_ratio=TINY_SPEC.imbalance_ratio)
    twin = shrink_recipe(recipe, run_dir, data={**sizes, **data}, img_size=TINY_SPEC.image_size)
    twin["trainer"]["enable_progress_bar"] = False
    return twin


def tiny_demo_recipe(tmp_path: Path, root: Path, run_folder: str = "run", **changes) -> Path:
    """The ``demo`` recipe for two steps on the tiny set, written to ``tmp_path/recipe.yaml``.

    ``changes`` are dotted keys (``**{"trainer.log_every_n_steps": 50}``) set last.
    """
    import yaml

    from rs_metapeft.recipes import recipe_path

    recipe = yaml.safe_load(recipe_path("demo").read_text())
    recipe["trainer"].update(max_steps=2, max_epochs=1, default_root_dir=str(tmp_path / run_folder),
                             enable_progress_bar=False, limit_val_batches=1)
    recipe["model"].update(img_size=32, backbone_kwargs={"depth": 2})
    recipe["model"]["meta"].update(every_n_steps=1, warmup_steps=0)
    recipe["data"]["init_args"].update(
        root=str(root), num_classes=TINY_SPEC.num_classes, batch_size=8, meta_batch_size=4,
        image_size=TINY_SPEC.image_size, max_per_class=TINY_SPEC.max_per_class,
        val_per_class=TINY_SPEC.val_per_class, test_per_class=TINY_SPEC.test_per_class,
        synthetic_imbalance_ratio=TINY_SPEC.imbalance_ratio)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = recipe
        for key in parents:
            node = node[key]
        node[leaf] = value
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.fixture(scope="session")
def trained_run(tiny_s2_root, tmp_path_factory) -> Path:
    """A run folder of the demo recipe's twin trained for two steps (checkpoint and report)."""
    import yaml

    from rs_metapeft.api import load_recipe
    from rs_metapeft.cli import main

    folder = tmp_path_factory.mktemp("trained")
    recipe = folder / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(tiny_twin(load_recipe("demo"), folder / "runs", tiny_s2_root)))
    assert main(["fit", "--config", str(recipe)]) == 0
    (report,) = (folder / "runs").rglob("report.json")
    return report.parent


#: Sizes of the tiny synthetic multi-label set (BigEarthNet layout, 12 px patches).
TINY_MULTILABEL = {"num_train": 12, "num_val": 6, "num_test": 6, "patch_size": 12}


def tiny_multilabel_twin(run_dir: Path, data_root: Path, recipe: str = "demo_multilabel",
                         **data) -> dict:
    """A CPU-sized twin of a multi-label recipe on the tiny generated set (19 labels)."""
    from rs_metapeft.api import load_recipe
    from rs_metapeft.recipes import shrink_recipe

    sizes = {"root": str(data_root), **TINY_MULTILABEL, **data}
    twin = shrink_recipe(load_recipe(recipe), run_dir, data=sizes, img_size=TINY_SPEC.image_size)
    twin["trainer"]["enable_progress_bar"] = False
    twin["trainer"]["limit_test_batches"] = None  # every test sample, for the report's counts
    return twin


@pytest.fixture(scope="session")
def multilabel_run(tmp_path_factory) -> Path:
    """A run folder of the multi-label demo's twin, fit for two steps through the CLI."""
    import yaml

    from rs_metapeft.cli import main

    folder = tmp_path_factory.mktemp("multilabel")
    recipe = folder / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(tiny_multilabel_twin(folder / "runs", folder / "data")))
    assert main(["fit", "--config", str(recipe)]) == 0
    (report,) = (folder / "runs").rglob("report.json")
    return report.parent


@pytest.fixture(scope="session")
def multilabel_checkpoint(multilabel_run) -> Path:
    """The ``last.ckpt`` of :func:`multilabel_run`."""
    (ckpt,) = multilabel_run.rglob("last.ckpt")
    return ckpt


def multilabel_test_images(run: Path, count: int = 3) -> tuple[torch.Tensor, list[str]]:
    """The first ``count`` test images (raw bands) of a :func:`multilabel_run`'s data, and bands."""
    from rs_metapeft.data import SyntheticBigEarthNetDataModule

    dm = SyntheticBigEarthNetDataModule(root=str(run.parents[2] / "data"), **TINY_MULTILABEL)
    dm.setup("test")
    return torch.stack([dm.test_dataset[i]["image"] for i in range(count)]), list(dm.bands)
