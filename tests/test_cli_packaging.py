"""Recipes travel inside the wheel, so names work from a non-editable install."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rs_metapeft.recipes import list_recipes

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # builds a wheel and imports torch in a fresh interpreter
def test_wheel_carries_the_recipes_and_finds_them(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "rs_metapeft", src / "rs_metapeft",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "recipes", src / "recipes")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", str(src), "-w", str(tmp_path / "dist")],
                   check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("rs_metapeft-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(Path(n).stem for n in names if n.startswith("rs_metapeft/_recipes/"))
    assert shipped == list_recipes()
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("from rs_metapeft.recipes import RECIPES_DIR, list_recipes, recipe_path;"
            "print(RECIPES_DIR); print(recipe_path('demo_sar')); print(len(list_recipes()))")
    env = {"PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    assert out[0] == str(site / "rs_metapeft" / "_recipes")
    assert out[1] == str(site / "rs_metapeft" / "_recipes" / "demo_sar.yaml")
    assert int(out[2]) == len(list_recipes())
