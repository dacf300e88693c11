"""Find, describe, copy and shrink recipe YAML files.

Recipes ship in the top-level ``recipes/`` folder of the source tree; wheels carry the same files
as the package ``rs_metapeft._recipes`` (see ``setup.py``), so a recipe name works whether the
project is installed editable, from a wheel, or run from a checkout.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import re
import shutil
from pathlib import Path
from typing import Any

from .io import atomic_path

__all__ = [
    "RECIPES_DIR",
    "copy_recipe",
    "list_recipes",
    "recipe_path",
    "recipe_summary",
    "shrink_recipe",
]


def _recipes_dir() -> Path:
    # Installed: the recipes are package data of the (namespace) package rs_metapeft._recipes.
    spec = importlib.util.find_spec("rs_metapeft._recipes")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if any(Path(location).glob("*.yaml")):
            return Path(location)
    return Path(__file__).resolve().parent.parent / "recipes"  # a source checkout


#: The folder of the recipes shipped with the project.
RECIPES_DIR = _recipes_dir()


def list_recipes() -> list[str]:
    """Names of the shipped recipes."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def recipe_path(name_or_path: str | os.PathLike) -> Path:
    """Resolve a recipe: an existing file, or a shipped recipe's name (with or without .yaml).

    Raises:
        FileNotFoundError: neither exists; the message lists the shipped recipes.

    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = RECIPES_DIR / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
    if shipped.is_file():
        return shipped
    raise FileNotFoundError(
        f"recipe {str(name_or_path)!r} not found: not a file, and not one of the shipped recipes "
        f"({', '.join(list_recipes()) or 'none'}) in {RECIPES_DIR}"
    )


def recipe_summary(name_or_path: str | os.PathLike) -> str:
    """Return the first sentence of a recipe's leading comment block (what the recipe is for).

    The sentence may run over several comment lines; it is returned whole, on one line.

    Example:
        >>> recipe_summary("ucmerced_lt")
        'UC Merced Land Use, long-tailed (imbalance ratio 10): aerial RGB, 0.3 m.'
    """
    block = []
    for line in recipe_path(name_or_path).read_text().splitlines():
        if not line.startswith("#"):
            break
        block.append(line.lstrip("#").strip())
    text = " ".join(" ".join(block).split())
    end = re.search(r"(?<!e\.g)(?<!i\.e)(?<!\bal)\.\s+(?=[A-Z])", text)
    return text[:end.start() + 1] if end else text


def copy_recipe(name_or_path: str | os.PathLike, dest: str | os.PathLike,
                overwrite: bool = False) -> Path:
    """Copy a recipe to ``dest`` (a file, or a folder to copy into) to edit it.

    Raises:
        FileExistsError: the target exists and ``overwrite`` is false.

    """
    source = recipe_path(name_or_path)
    target = Path(dest)
    if target.is_dir():
        target = target / source.name
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass --overwrite to replace it")
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    return target


def shrink_recipe(recipe: dict[str, Any], root_dir: str | os.PathLike, *,
                  data: dict[str, Any] | None = None, img_size: int = 32,
                  steps: int = 2) -> dict[str, Any]:
    """Make a CPU-sized twin of a recipe: same data module and method, two-block ViT, tiny batches.

    Only sizes change (backbone depth, image size, batch sizes, step counts, workers); the data
    module, bands, PEFT positions, meta settings and loss stay as the recipe says, so a twin that
    runs shows the recipe's wiring works.

    Args:
        recipe: the recipe as a dict (e.g. from :func:`rs_metapeft.api.load_recipe`).
        root_dir: run folder of the twin (``trainer.default_root_dir``).
        data: more ``data.init_args`` to set (e.g. ``root`` of generated data).
        img_size: model input size.
        steps: training steps (``trainer.max_steps``).

    Returns:
        A new recipe dict; ``recipe`` is not changed.

    Example:
        >>> from rs_metapeft.api import load_recipe
        >>> twin = shrink_recipe(load_recipe("demo"), "runs/twin")
        >>> twin["model"]["backbone_kwargs"], twin["trainer"]["max_steps"]
        ({'depth': 2}, 2)

    """
    twin = copy.deepcopy(recipe)
    trainer = twin.setdefault("trainer", {})
    trainer.update(max_steps=steps, max_epochs=steps, default_root_dir=str(root_dir),
                   limit_val_batches=1, limit_test_batches=2, num_sanity_val_steps=0,
                   accelerator="cpu", devices=1, log_every_n_steps=1)
    trainer.pop("strategy", None)
    model = twin.setdefault("model", {})
    model.update(img_size=img_size, weights=None)
    model["backbone_kwargs"] = {**(model.get("backbone_kwargs") or {}), "depth": 2}
    meta = model.get("meta")
    if isinstance(meta, dict) and meta.get("enabled", True):
        meta.update(every_n_steps=1, warmup_steps=0)
    init = twin.setdefault("data", {}).setdefault("init_args", {})
    init.update(batch_size=8, meta_batch_size=4, num_workers=0, image_size=img_size)
    init.pop("download", None)
    init.update(data or {})
    return twin
