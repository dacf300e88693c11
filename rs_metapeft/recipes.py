"""Find recipe YAML files: a path, or the name of a recipe shipped in ``recipes/``."""

from __future__ import annotations

from pathlib import Path

__all__ = ["RECIPES_DIR", "list_recipes", "recipe_path"]

#: The recipes shipped with the project.
RECIPES_DIR = Path(__file__).resolve().parent.parent / "recipes"


def list_recipes() -> list[str]:
    """Names of the shipped recipes."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def recipe_path(name_or_path: str) -> Path:
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
        f"recipe {name_or_path!r} not found: not a file, and not one of the shipped recipes "
        f"({', '.join(list_recipes()) or 'none'}) in {RECIPES_DIR}"
    )
