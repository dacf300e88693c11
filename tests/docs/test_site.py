import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rs_metapeft.reporting import build_report, write_report

ROOT = Path(__file__).resolve().parents[2]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _load("hooks")


def test_site_builds_strictly(tmp_path):
    """mkdocs --strict: any broken link, reference, docstring or generated table fails here."""
    pytest.importorskip("mkdocs")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    site = tmp_path / "site"
    home = (site / "index.html").read_text()
    assert "assets/gamma_heatmap.png" in home and (site / "assets" / "gamma_heatmap.png").is_file()
    assert "Tail-class report" not in home and "class-mean acc" in home  # the rendered report
    recipes = (site / "recipes" / "index.html").read_text()
    assert "SyntheticEuroSATDataModule" in recipes
    api = (site / "reference" / "api" / "index.html").read_text()
    assert "load_recipe" in api and "&gt;&gt;&gt;" not in api.split("load_recipe", 1)[1][:20]


def test_recipes_table_reads_files_and_comments(tmp_path):
    (tmp_path / "a.yaml").write_text(
        "# First line says what it is.\n# Source: somewhere.\nseed_everything: 0\n"
        "trainer: {max_epochs: 3}\nmodel: {backbone: vit_x, img_size: 32,"
        " peft: {positions: [q, v]}, meta: {enabled: false}}\n"
        "data: {class_path: pkg.mod.MyDataModule, init_args: {bands: [VV]}}\n"
    )
    text = hooks.render_recipes(tmp_path)
    row = next(line for line in text.splitlines() if line.startswith("| [`a`]"))
    assert "First line says what it is." in row and "Source" not in row  # the first sentence
    assert "PEFT, fixed gamma, on q, v" in row and "3 epochs" in row and "VV" in row
    assert "Data module `MyDataModule`; bands VV; backbone `vit_x` at 32 px." in text
    assert "Source: somewhere." in text and "rs-metapeft fit --config a" in text
    (tmp_path / "b.yaml").write_text("model: [unclosed\n")
    with pytest.raises(ValueError, match="b.yaml"):
        hooks.render_recipes(tmp_path)


def test_shipped_recipes_are_in_the_table():
    names = [row["name"] for row in hooks.recipe_rows()]
    assert "demo" in names
    assert names == sorted(p.stem for p in hooks.RECIPES_DIR.glob("*.yaml"))


def test_benchmark_tables_need_command_and_machine(tmp_path):
    (tmp_path / "speed.json").write_text(json.dumps({
        "title": "Step time", "command": "python benchmarks/speed.py", "machine": "2-core VM",
        "rows": [{"mode": "meta", "ms": 12.3456}, {"mode": "plain", "ms": 10.0}],
    }))
    text, problems = hooks.render_benchmarks(tmp_path)
    assert problems == []
    assert "## Step time" in text and "`python benchmarks/speed.py`" in text and "2-core VM" in text
    assert "| mode | ms |" in text and "| meta | 12.35 |" in text
    (tmp_path / "bare.json").write_text(json.dumps([{"x": 1}]))
    _, problems = hooks.render_benchmarks(tmp_path)
    assert any("bare.json: no 'command'" in p for p in problems)
    assert any("bare.json: no 'machine'" in p for p in problems)


def test_no_benchmarks_is_said_plainly(tmp_path):
    text, problems = hooks.render_benchmarks(tmp_path)
    assert "no JSON files" in text and problems == []


def test_tail_report_marker_renders_the_report(tmp_path):
    report = build_report(np.array([[3, 1], [2, 2]]), ["big", "small"], [150, 5])
    report["gamma"] = {"0": {"q": 0.5, "adaptformer": 1.25}}
    _, path = write_report(report, tmp_path)
    text = hooks.render_tail_report(path)
    assert not text.startswith("# ") and "## Learned gamma" in text
    assert "| big | many | 150 |" in text and "0.500" in text and "1.250" in text


def test_recipes_table_names_torchgeo_weights():
    rows = {row["name"]: row for row in hooks.recipe_rows()}
    assert rows["eurosat_ms_torchgeo"]["backbone"] == (
        "vit_small_patch16_224 @ 224 px, torchgeo:ViTSmall16_Weights.SENTINEL2_ALL_DINO")
    assert rows["demo"]["backbone"] == "vit_tiny_patch16_224 @ 64 px"


griffe_roles = _load("griffe_roles")
check_site = _load("check_site")


def test_sphinx_roles_become_cross_references_or_code():
    paths = {"pkg", "pkg.api", "pkg.api.fit", "pkg.tasks", "pkg.tasks.Task", "pkg.api.Task"}
    text = ("Run :func:`fit`, then :class:`~pkg.tasks.Task` (see :class:`.Task`); "
            ":class:`torch.nn.Module` is outside.\n\n```python\n:func:`fit`\n```\n")
    out = griffe_roles.rewrite(text, "pkg.api.load", paths, {"pkg.api.Task": "pkg.tasks.Task"})
    assert '<autoref identifier="pkg.api.fit" optional><code>fit</code></autoref>' in out
    assert '<autoref identifier="pkg.tasks.Task" optional><code>Task</code></autoref>' in out
    assert out.count('identifier="pkg.tasks.Task"') == 2  # the re-export resolves to its source
    assert "`torch.nn.Module` is outside" in out
    assert out.endswith("```python\n:func:`fit`\n```\n")  # code is left alone


def test_benchmark_headings_are_unique_and_readable(tmp_path):
    result = {"command": "python b.py", "machine": "2-core VM", "rows": [{"x": 1}]}
    for name in ("efficacy-cpu-s2", "efficacy-cpu-sar"):
        (tmp_path / f"{name}.json").write_text(json.dumps({**result, "title": "Efficacy (cpu)"}))
    (tmp_path / "stems_sentinel1.json").write_text(json.dumps({**result, "benchmark": "stems"}))
    text, problems = hooks.render_benchmarks(tmp_path)
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## Efficacy (cpu, s2)", "## Efficacy (cpu, sar)", "## Stems"]
    assert problems == []


def test_site_check_finds_raw_roles_repeated_and_file_name_headings():
    page = ("<article><h2>Speed</h2><h2>Speed</h2><h2>stems_sentinel1</h2>"
            "<h3><code>demo_sar</code></h3><p>see :func:<code>fit</code></p></article>")
    problems = check_site.static_problems("benchmarks/index.html", page)
    assert any("raw Sphinx role" in p and ":func:fit" in p for p in problems)
    assert 'benchmarks/index.html: heading "Speed" appears 2 times' in problems
    assert 'benchmarks/index.html: heading "stems_sentinel1" is a file name' in problems
    assert not any('"demo_sar"' in p for p in problems)  # a recipe's name in code is fine
    # the API reference's headings are object names
    assert check_site.static_problems("reference/api/index.html", "<h2>a_b</h2>") == []
