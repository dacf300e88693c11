"""The label-tail report of a multi-label run: mAP and F1 by label frequency, co-occurrence.

A multi-label model gives every label a sigmoid score. Its report ranks the test samples by each
label's score for the average precision (AP, threshold-free) and cuts them at the label's
threshold (chosen on the validation split, :mod:`rs_metapeft.tasks.thresholds`) for F1, both with
torchmetrics' multilabel metrics:

* micro mAP / micro F1: all (sample, label) pairs pooled, so frequent labels dominate;
* macro mAP / macro F1: the mean over labels, each label counting once (the tail's view);
* many / medium / few: the labels grouped by their training frequency (the rule of
  single-label reports, :func:`~rs_metapeft.data.longtail.assign_groups`), each group's mean AP
  and F1;
* per label: training count and frequency, group, test positives, AP, F1 and threshold;
* the test split's label co-occurrence (how often two labels are on the same sample).

A label without positives in the test split has no AP or F1 (``None``) and is left out of the
means, as a single-label report leaves out a class without test images. Reports carry
``"task": "multilabel"``; :func:`~rs_metapeft.reporting.write_report`, ``rs-metapeft report``
and ``rs-metapeft compare`` read them as such.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torchmetrics.functional.classification import (
    multilabel_average_precision,
    multilabel_f1_score,
)

from ..data.longtail import GROUPS, assign_groups, group_rule_used
from .metrics import describe_groups
from .tables import percent_cell

__all__ = [
    "MULTILABEL",
    "MULTILABEL_COLUMNS",
    "build_multilabel_report",
    "comparison_row",
    "format_multilabel_report",
    "is_multilabel",
    "top_pairs",
]

#: ``report["task"]`` of a multi-label report.
MULTILABEL = "multilabel"
#: Columns of ``rs-metapeft compare`` for multi-label runs: (key, header).
MULTILABEL_COLUMNS = (
    ("run", "run"),
    ("macro_map", "macro mAP %"),
    ("micro_map", "micro mAP %"),
    ("macro_f1", "macro-F1 %"),
    ("micro_f1", "micro-F1 %"),
    *((g, f"{g} mAP %") for g in GROUPS),
    ("trainable_parameters", "trainable params"),
    ("fit_wall_time_s", "fit wall time s"),
    ("switched_off", "modules off"),
)


def is_multilabel(report: dict) -> bool:
    """Whether a report is a multi-label (label-tail) report."""
    return isinstance(report, dict) and report.get("task") == MULTILABEL


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def build_multilabel_report(
    scores: torch.Tensor,
    targets: torch.Tensor,
    thresholds: torch.Tensor,
    class_names: Sequence[str],
    train_counts: Sequence[int],
    train_samples: int | None = None,
    group_rule: str = "auto",
    many_threshold: int = 100,
    few_threshold: int = 20,
) -> dict[str, Any]:
    """Summarise a multi-label model's test scores into the label-tail report.

    Args:
        scores: (N, K) sigmoid scores of the test samples.
        targets: (N, K) multi-hot labels of the test samples.
        thresholds: (K,) per-label thresholds (a score at or above one predicts the label).
        class_names: label names.
        train_counts: training samples carrying each label (decide the groups).
        train_samples: training samples in all (the frequencies' denominator; ``None``: the
            frequencies are left out).
        group_rule: see :func:`~rs_metapeft.data.longtail.assign_groups`.
        many_threshold: many-group threshold.
        few_threshold: few-group threshold.

    Returns:
        A JSON-ready dict: ``task``, ``micro_map``, ``macro_map``, ``micro_f1``, ``macro_f1``,
        ``group_map`` and ``group_f1`` (many / medium / few), the groups' rule and description,
        ``num_test_images``, ``per_class`` rows and ``co_occurrence`` (test split).

    Raises:
        ValueError: the shapes, names and counts do not agree.

    """
    scores, targets = scores.float().cpu(), targets.long().cpu()
    n, k = scores.shape
    if targets.shape != scores.shape or len(class_names) != k or len(train_counts) != k:
        raise ValueError(
            f"scores {tuple(scores.shape)}, targets {tuple(targets.shape)}, {len(class_names)} "
            f"names and {len(train_counts)} training counts do not agree on the labels"
        )
    used = group_rule_used(train_counts, group_rule, many_threshold, few_threshold)
    groups = assign_groups(train_counts, group_rule, many_threshold, few_threshold)
    predicted = (scores >= thresholds.float().cpu()).long()
    positives = targets.sum(0)
    evaluated = positives > 0
    with warnings.catch_warnings():  # about labels without positives: those are None below
        warnings.simplefilter("ignore")
        ap = multilabel_average_precision(scores, targets, k, average=None)
        micro_map = multilabel_average_precision(scores, targets, k, average="micro")
    f1 = multilabel_f1_score(predicted, targets, k, average=None, zero_division=0)
    micro_f1 = multilabel_f1_score(predicted, targets, k, average="micro", zero_division=0)
    ap_rows = [float(ap[i]) if evaluated[i] else None for i in range(k)]
    f1_rows = [float(f1[i]) if evaluated[i] else None for i in range(k)]
    in_group = {g: [i for i in range(k) if groups[i] == g] for g in GROUPS}
    co = (targets.T @ targets).numpy()
    rule = group_rule
    return {
        "task": MULTILABEL,
        "micro_map": float(micro_map) if bool(evaluated.any()) else None,
        "macro_map": _mean(ap_rows),
        "micro_f1": float(micro_f1),
        "macro_f1": _mean(f1_rows),
        "group_map": {g: _mean([ap_rows[i] for i in members]) for g, members in in_group.items()},
        "group_f1": {g: _mean([f1_rows[i] for i in members]) for g, members in in_group.items()},
        "groups_rule": rule,
        "groups_rule_used": used,
        "groups_description": describe_groups(train_counts, groups, rule, used, many_threshold,
                                              few_threshold).replace("images", "samples"),
        "num_test_images": int(n),
        "train_samples": train_samples,
        "labels_per_test_image": float(targets.sum() / max(n, 1)),
        "predicted_labels_per_test_image": float(predicted.sum() / max(n, 1)),
        "per_class": [
            {
                "class": class_names[i],
                "train_count": int(train_counts[i]),
                "train_frequency": (int(train_counts[i]) / train_samples
                                    if train_samples else None),
                "group": groups[i],
                "test_count": int(positives[i]),
                "predicted_count": int(predicted[:, i].sum()),
                "ap": ap_rows[i],
                "f1": f1_rows[i],
                "threshold": float(thresholds[i]),
            }
            for i in range(k)
        ],
        "co_occurrence": {"split": "test", "matrix": co.astype(int).tolist()},
    }


def top_pairs(report: dict, limit: int = 10) -> list[dict[str, Any]]:
    """The label pairs most often on one test sample, with how often each implies the other.

    Returns:
        Up to ``limit`` rows ``a``, ``b``, ``count``, ``p_b_given_a``, ``p_a_given_b``, most
        frequent pair first.
    """
    matrix = np.asarray(report["co_occurrence"]["matrix"], dtype=np.int64)
    names = [row["class"] for row in report["per_class"]]
    pairs = [(int(matrix[i, j]), i, j) for i in range(len(names)) for j in range(i + 1, len(names))
             if matrix[i, j] > 0]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    return [{"a": names[i], "b": names[j], "count": c, "p_b_given_a": c / matrix[i, i],
             "p_a_given_b": c / matrix[j, j]} for c, i, j in pairs[:limit]]


def format_multilabel_report(report: dict) -> list[str]:
    """Markdown lines of a multi-label report's metrics, label table and co-occurrence."""
    lines = ["| macro mAP | micro mAP | macro-F1 | micro-F1 | "
             + " | ".join(f"{g} mAP" for g in GROUPS) + " | "
             + " | ".join(f"{g} F1" for g in GROUPS) + " |",
             "|" + "---:|" * (4 + 2 * len(GROUPS)),
             f"| {percent_cell(report['macro_map'])} | {percent_cell(report['micro_map'])} | "
             f"{percent_cell(report['macro_f1'])} | {percent_cell(report['micro_f1'])} | "
             + " | ".join(percent_cell(report["group_map"][g]) for g in GROUPS) + " | "
             + " | ".join(percent_cell(report["group_f1"][g]) for g in GROUPS) + " |", ""]
    lines.append(f"Label groups by training frequency: {report['groups_description']}.")
    lines.append(f"{report['num_test_images']} test samples, "
                 f"{report['labels_per_test_image']:.2f} labels each "
                 f"({report['predicted_labels_per_test_image']:.2f} predicted); F1 at per-label "
                 f"thresholds chosen {report.get('thresholds_source', 'on validation')}.")
    lines += ["", "| label | group | train | train % | test | AP % | F1 % | threshold |",
              "|:--|:--|--:|--:|--:|--:|--:|--:|"]
    for row in sorted(report["per_class"], key=lambda r: -r["train_count"]):
        freq = row.get("train_frequency")
        lines.append(
            f"| {row['class']} | {row['group']} | {row['train_count']} | "
            f"{'n/a' if freq is None else f'{100 * freq:.1f}'} | {row['test_count']} | "
            f"{percent_cell(row['ap'])} | {percent_cell(row['f1'])} | {row['threshold']:.2f} |")
    pairs = top_pairs(report)
    if pairs:
        lines += ["", "## Label co-occurrence (test split)", "",
                  "| label a | label b | together | P(b given a) % | P(a given b) % |",
                  "|:--|:--|--:|--:|--:|"]
        lines += [f"| {p['a']} | {p['b']} | {p['count']} | {percent_cell(p['p_b_given_a'])} | "
                  f"{percent_cell(p['p_a_given_b'])} |" for p in pairs]
    return lines


def comparison_row(report: dict) -> dict[str, Any]:
    """A multi-label report's row of ``rs-metapeft compare``.

    Keys of :data:`MULTILABEL_COLUMNS` but ``run``.
    """
    return {
        "macro_map": report["macro_map"], "micro_map": report["micro_map"],
        "macro_f1": report["macro_f1"], "micro_f1": report["micro_f1"],
        **{g: report["group_map"].get(g) for g in GROUPS},
        "trainable_parameters": report.get("trainable_parameters"),
        "fit_wall_time_s": report.get("fit_wall_time_s"),
        "switched_off": (len(report["switched_off"])
                         if isinstance(report.get("switched_off"), list) else None),
    }
