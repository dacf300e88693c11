"""MkDocs hooks: pages generated from the repository at build time.

Markers in a page's Markdown are replaced while the site builds, so tables can never drift from
the files they describe:

- ``<!-- recipes-table -->``: a table of ``recipes/*.yaml`` (read with ``yaml.safe_load``) with
  each recipe's leading comment.
- ``<!-- benchmark-tables -->``: every ``benchmarks/results/*.json`` as a table, with the command
  and machine that produced it; PNG files named in a result's ``figures`` are shown too.
- ``<!-- tail-report: PATH -->``: a run's ``report.md`` (PATH relative to ``docs/``), as
  :func:`rs_metapeft.reporting.write_report` wrote it, indented like the marker.

A problem (bad YAML, a benchmark without its command or machine) is logged as a warning, which
``mkdocs build --strict`` turns into a failed build.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger("mkdocs.hooks.rs_metapeft")

ROOT = Path(__file__).resolve().parents[2]
RECIPES_DIR = ROOT / "recipes"
RESULTS_DIR = ROOT / "benchmarks" / "results"

#: Keys a benchmark result may use for the command that produced it, and for the machine.
COMMAND_KEYS = ("command", "cmd")
MACHINE_KEYS = ("machine", "device", "hardware", "host")

_TAIL_REPORT = re.compile(
    r"^(?P<indent>[ \t]*)<!--\s*tail-report:\s*(?P<path>\S+)\s*-->", re.MULTILINE
)


# -- recipes ----------------------------------------------------------------------------------
def leading_comment(text: str) -> list[str]:
    """Return the comment lines at the top of a YAML file, without their ``#``."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip())
    return lines


def _method(model: dict) -> str:
    peft = model.get("peft") or {}
    meta = model.get("meta") or {}
    positions = peft.get("positions")
    if positions == []:
        return "linear probe"
    where = ", ".join(positions) if positions else "all positions"
    if meta.get("enabled", True):
        return f"MetaPEFT ({meta.get('hypergradient', 'default')}) on {where}"
    return f"PEFT, fixed gamma, on {where}"


def _text(text: Any) -> str:
    """Markdown text with ``<`` and ``>`` outside code spans written as entities.

    ``root/<Class>/*.tif`` in a recipe's comment is a path, not an HTML tag to drop.
    """
    parts = str(text).split("`")
    return "`".join(part if i % 2 else part.replace("<", "&lt;").replace(">", "&gt;")
                    for i, part in enumerate(parts))


def _cell(text: Any) -> str:
    """Text for a Markdown table cell: one line, pipes escaped (see :func:`_text`)."""
    return _text(str(text).replace("|", "\\|").replace("\n", " "))


def recipe_rows(recipes_dir: Path = RECIPES_DIR) -> list[dict[str, str]]:
    """One summary row per recipe file.

    Raises:
        ValueError: a recipe is not valid YAML or not a mapping (the message names the file).

    """
    rows = []
    for path in sorted(recipes_dir.glob("*.yaml")):
        text = path.read_text()
        try:
            recipe = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ValueError(f"{path}: not valid YAML: {err}") from err
        if not isinstance(recipe, dict):
            raise ValueError(f"{path}: a recipe must be a mapping of trainer/model/data sections")
        model, data = recipe.get("model") or {}, recipe.get("data") or {}
        init = data.get("init_args") or {}
        bands = init.get("bands")
        trainer = recipe.get("trainer") or {}
        length = (f"{trainer['max_steps']} steps" if trainer.get("max_steps")
                  else f"{trainer.get('max_epochs', '?')} epochs")
        rows.append({
            "name": path.stem,
            "comment": leading_comment(text),
            "data": str(data.get("class_path", "?")).rsplit(".", 1)[-1],
            "bands": ", ".join(bands) if bands else "dataset default",
            "backbone": f"{model.get('backbone', '?')} @ {model.get('img_size', '?')} px"
                        + (f", {model['weights']}" if str(model.get("weights")).startswith(
                            "torchgeo:") else ""),
            "method": _method(model),
            "length": length,
        })
    return rows


_SENTENCE_END = re.compile(r"(?<!e\.g)(?<!i\.e)(?<!\bal)\.\s+(?=[A-Z])")


def first_sentence(lines: list[str]) -> str:
    """The first sentence of a recipe's leading comment, whole (it may span several lines).

    The same rule as ``rs-metapeft recipes list`` (``rs_metapeft.recipes.recipe_summary``).
    """
    text = " ".join(" ".join(lines).split())
    end = _SENTENCE_END.search(text)
    return text[:end.start() + 1] if end else text


def _bands(bands: str) -> str:
    """A band list short enough for a table cell: all of a few, else the count and the ends."""
    names = [b.strip() for b in bands.split(",")]
    if len(names) <= 4:
        return bands
    return f"{len(names)}: {names[0]} ... {names[-1]}"


def render_recipes(recipes_dir: Path = RECIPES_DIR) -> str:
    """Render the recipes as a Markdown table, then each recipe's leading comment.

    The table holds what fits the page (what the recipe is for, bands, method, length); the
    data module and backbone, whose names do not wrap, are in each recipe's section below.
    """
    rows = recipe_rows(recipes_dir)
    if not rows:
        return f"No recipes found in `{recipes_dir}`."
    out = ["| recipe | what | bands | method | length |", "|:--|:--|:--|:--|--:|"]
    for r in rows:
        what = _cell(first_sentence(r["comment"]))
        out.append(f"| [`{r['name']}`](#recipe-{r['name']}) | {what} | {_cell(_bands(r['bands']))} "
                   f"| {_cell(r['method'])} | {r['length']} |")
    for r in rows:
        out += ["", f"### `{r['name']}` {{#recipe-{r['name']}}}", ""]
        out += [f"Data module `{r['data']}`; bands {_cell(r['bands'])}; backbone "
                f"`{r['backbone'].split(' @ ')[0]}` at {r['backbone'].split(' @ ')[-1]}.", ""]
        out += [_text(line) for line in r["comment"]] or ["(no comment in the file)"]
        out += ["", "```bash", f"rs-metapeft fit --config {r['name']}", "```"]
    return "\n".join(out)


# -- benchmarks -------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return _cell(json.dumps(value))
    return _cell(value)


def _first(data: dict, keys: tuple[str, ...]) -> Any:
    return next((data[k] for k in keys if data.get(k)), None)


def _rows(data: Any) -> list[dict]:
    if isinstance(data, list):
        return [r for r in data if isinstance(r, dict)]
    if isinstance(data.get("rows"), list):
        return data["rows"]
    for value in data.values():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            return value
    return []


def _table(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    columns = list(dict.fromkeys(k for r in rows for k in r))
    out = ["", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return out + ["| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |" for r in rows]


def _result_titles():
    """:func:`benchmarks/render.py`'s ``result_titles`` (one rule for the page's headings)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("benchmarks_render",
                                                  ROOT / "benchmarks" / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.result_titles


def render_benchmark(path: Path, title: str | None = None) -> tuple[str, list[str]]:
    """One benchmark result as Markdown, and the problems found in it (empty when fine).

    The JSON is a dict with ``command``, ``machine``, ``rows`` (a list of dicts, one per table
    row) and optionally ``title``, ``notes``, ``tables`` (title -> more rows) and ``figures``
    (PNG paths relative to the JSON).
    """
    data = json.loads(path.read_text())
    meta = data if isinstance(data, dict) else {}
    problems = []
    command, machine = _first(meta, COMMAND_KEYS), _first(meta, MACHINE_KEYS)
    if not command:
        problems.append(f"{path}: no 'command' key; benchmark scripts must record how they ran")
    if not machine:
        problems.append(f"{path}: no 'machine' key; benchmark scripts must record where they ran")
    rows = _rows(data)
    if not rows:
        problems.append(f"{path}: no 'rows' (a list of dicts) to show")
    title = title or _result_titles()([(path, data)])[path]
    out = [f"## {title}", ""]
    out.append(f"Command: `{command}`  " if command else "Command: not recorded  ")
    out.append(f"Machine: {machine if isinstance(machine, str) else json.dumps(machine)}  ")
    out.append(f"Source: `benchmarks/results/{path.name}`")
    if meta.get("notes"):
        out += ["", _cell(meta["notes"])]
    out += _table(rows)
    for title, extra in (meta.get("tables") or {}).items():  # paired differences, ablations ...
        if isinstance(extra, list) and extra:
            out += ["", f"**{_cell(title)}**"] + _table(extra)
    for figure in meta.get("figures") or []:
        out += ["", f"![{Path(figure).stem}](benchmarks/{Path(figure).name})"]
    return "\n".join(out), problems


def render_benchmarks(results_dir: Path = RESULTS_DIR) -> tuple[str, list[str]]:
    """Every result file under ``results_dir``, and all problems found."""
    paths = sorted(results_dir.glob("*.json"))
    if not paths:
        return ("No benchmark results are recorded in this build yet: `benchmarks/results/` has "
                "no JSON files."), []
    parts, problems = [], []
    titles = _result_titles()([(p, json.loads(p.read_text())) for p in paths])
    for path in paths:
        text, found = render_benchmark(path, titles[path])
        parts.append(text)
        problems += found
    return "\n\n".join(parts), problems


def benchmark_figures(results_dir: Path = RESULTS_DIR) -> list[Path]:
    """PNG files named by any result's ``figures``."""
    found = []
    for path in sorted(results_dir.glob("*.json")):
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            found += [(path.parent / f).resolve() for f in data.get("figures") or []]
    return found


# -- tail reports -----------------------------------------------------------------------------
def render_tail_report(report_md: Path) -> str:
    """Return a run's ``report.md`` without its title, headings moved one level down.

    The file is the one ``rs_metapeft.reporting.write_report`` wrote; it is read, not re-rendered,
    so the build never imports the package (torch and Lightning would cost seconds).
    """
    lines = report_md.read_text().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]  # the page has its own title
    return "\n".join("#" + line if line.startswith("#") else line for line in lines)


# -- mkdocs hook entry points -----------------------------------------------------------------
def on_files(files, config):  # noqa: D103 - mkdocs hook
    from mkdocs.structure.files import File

    for png in benchmark_figures():
        if not png.is_file():
            log.warning("benchmark figure %s is named in benchmarks/results but missing", png)
            continue
        files.append(File.generated(config, f"benchmarks/{png.name}", abs_src_path=str(png)))
    return files


def on_page_markdown(markdown, page, config, files):  # noqa: D103 - mkdocs hook
    if "<!-- recipes-table -->" in markdown:
        markdown = markdown.replace("<!-- recipes-table -->", render_recipes())
    if "<!-- benchmark-tables -->" in markdown:
        text, problems = render_benchmarks()
        for problem in problems:
            log.warning(problem)
        markdown = markdown.replace("<!-- benchmark-tables -->", text)

    def report(match: re.Match) -> str:
        path = Path(config["docs_dir"]) / match.group("path")
        if not path.is_file():
            log.warning("%s: tail-report marker names %s, which does not exist",
                        page.file.src_uri, path)
            return ""
        # Keep the marker's indentation, so a report inside an admonition stays inside it.
        indent = match.group("indent")
        return "\n".join(indent + line if line else line
                         for line in render_tail_report(path).splitlines())

    return _TAIL_REPORT.sub(report, markdown)
