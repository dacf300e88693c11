"""Ship the top-level ``recipes/`` folder inside the wheel as ``rs_metapeft/_recipes``.

Everything else lives in pyproject.toml; this file only exists because a package mapped from a
folder outside ``rs_metapeft/`` cannot be declared next to automatic package discovery there.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["rs_metapeft", "rs_metapeft.*"]) + ["rs_metapeft._recipes"],
    package_dir={"rs_metapeft._recipes": "recipes"},
    package_data={"rs_metapeft._recipes": ["*.yaml"]},
)
