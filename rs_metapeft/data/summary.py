"""``rs-metapeft stats``: what a recipe's data looks like before training on it.

Per-band statistics of the training split (mean, std, 2nd/98th percentiles, valid pixels), the
class histogram of every split (multi-label data: the samples carrying each label), the training
imbalance ratio and the many / medium / few groups the report would use. The datamodule is built
from the recipe's ``data`` section exactly as the training command builds it (same parser, same
checks), so a recipe that passes ``stats`` has had every file scanned.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import yaml

from ..io import atomic_write_json
from ..recipes import recipe_path
from .datamodules.base import LongTailDataModule
from .datamodules.build import build_datamodule
from .longtail import assign_groups, imbalance_ratio

__all__ = ["dataset_summary", "datamodule_from_recipe", "format_summary", "stats_main"]


def datamodule_from_recipe(recipe: str | os.PathLike) -> tuple[LongTailDataModule, dict]:
    """Instantiate the datamodule of a recipe (a path or a shipped recipe's name).

    Returns:
        The datamodule and the recipe dict.
    """
    with open(recipe_path(str(recipe))) as f:
        config = yaml.safe_load(f) or {}
    return build_datamodule(config.get("data"), f"recipe {recipe}"), config


def dataset_summary(
    dm: LongTailDataModule,
    groups_rule: str = "auto",
    many_threshold: int = 100,
    few_threshold: int = 20,
    splits: tuple[str, ...] = ("val", "test"),
) -> dict[str, Any]:
    """Band statistics, class histograms, imbalance ratio and suggested groups of a datamodule.

    Args:
        dm: the datamodule (``prepare_data`` and ``setup("fit")`` are run here).
        groups_rule: ``auto``, ``thresholds`` or ``quantile`` (see
            :func:`~rs_metapeft.data.longtail.assign_groups`).
        many_threshold: many-group threshold.
        few_threshold: few-group threshold.
        splits: further splits to histogram (skipped with a note when one is missing).

    Returns:
        A JSON-ready dict.
    """
    dm.prepare_data()
    dm.setup("fit")
    counts = list(getattr(dm, "group_counts", None) or dm.train_counts)
    stats = dm.band_stats
    summary: dict[str, Any] = {
        "datamodule": type(dm).__name__,
        "root": str(dm.root) if getattr(dm, "root", None) else None,
        "bands": list(dm.bands),
        "band_statistics": stats.to_dict() if stats is not None else None,
        "classes": list(dm.class_names),
        "multilabel": dm.multilabel,
        "counts": {"train": counts},
        "imbalance_ratio": imbalance_ratio(counts),
        "groups": assign_groups(counts, groups_rule, many_threshold, few_threshold),
        "groups_rule": groups_rule,
        "notes": [],
    }
    for split in splits:
        try:
            dataset = dm.split_dataset(split)
        except Exception as err:  # a split may legitimately not exist (e.g. no test list)
            summary["notes"].append(f"{split}: not available ({err})")
            continue
        summary["counts"][split] = dm.label_counts(dataset)
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """A plain-text rendering of :func:`dataset_summary`."""
    lines = [f"{summary['datamodule']}: {len(summary['classes'])} classes, bands "
             f"{', '.join(summary['bands'])}"]
    if summary.get("root"):
        lines.append(f"Data folder: {summary['root']}")
    lines += ["", "Per-band statistics (training split):"]
    st = summary["band_statistics"]
    lines.append(f"  {'band':<8}{'mean':>12}{'std':>12}{'p02':>12}{'p98':>12}{'valid px':>12}")
    for i, band in enumerate(st["bands"]):
        p02 = st["p02"][i] if st["p02"] else float("nan")
        p98 = st["p98"][i] if st["p98"] else float("nan")
        lines.append(f"  {band:<8}{st['mean'][i]:>12.4g}{st['std'][i]:>12.4g}{p02:>12.4g}"
                     f"{p98:>12.4g}{st['count'][i]:>12d}")
    splits = list(summary["counts"])
    histogram = ("Label histogram (samples carrying each label):" if summary.get("multilabel")
                 else "Class histogram:")
    lines += ["", histogram,
              "  " + f"{'class':<24}" + "".join(f"{s:>8}" for s in splits) + f"{'group':>9}"]
    for c, name in enumerate(summary["classes"]):
        row = "".join(f"{summary['counts'][s][c]:>8d}" for s in splits)
        lines.append(f"  {name[:24]:<24}{row}{summary['groups'][c]:>9}")
    lines += ["", f"Imbalance ratio (train): {summary['imbalance_ratio']:.1f}",
              f"Suggested groups ({summary['groups_rule']}): " + "; ".join(
                  f"{g}: {summary['groups'].count(g)}" for g in ("many", "medium", "few"))]
    lines += [f"Note: {n}" for n in summary["notes"]]
    return "\n".join(lines)


def stats_main(argv: list[str]) -> int:
    """``rs-metapeft stats --config RECIPE [--json PATH]``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="rs-metapeft stats",
        description="Per-band statistics, class histogram, imbalance ratio and suggested groups.",
    )
    parser.add_argument("--config", "-c", required=True, help="recipe path or shipped recipe name")
    parser.add_argument("--json", help="also write the summary as JSON here")
    args = parser.parse_args(argv)
    dm, config = datamodule_from_recipe(args.config)
    groups = ((config.get("model") or {}).get("groups") or {})
    summary = dataset_summary(
        dm, groups.get("rule", "auto"), groups.get("many_threshold", 100),
        groups.get("few_threshold", 20),
    )
    print(format_summary(summary))
    if args.json:
        atomic_write_json(args.json, summary)
    return 0
