"""Tail-class reports: overall, class-mean and group accuracy, macro-F1, per-class table."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..data.longtail import BALANCED, BALANCED_RATIO, GROUPS, assign_groups, group_rule_used

__all__ = ["build_report", "describe_groups"]


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def build_report(
    confusion: np.ndarray,
    class_names: Sequence[str],
    train_counts: Sequence[int],
    group_rule: str = "auto",
    many_threshold: int = 100,
    few_threshold: int = 20,
    groups: Sequence[str] | None = None,
) -> dict:
    """Summarise a confusion matrix into a long-tail report.

    Group accuracy is the mean of the per-class accuracies of the classes in the group, so it does
    not depend on how many test images each class has.

    Args:
        confusion: (C, C) counts, rows = true class, columns = predicted class.
        class_names: class names.
        train_counts: training images per class (decides the groups). A task passes the
            training split's counts before any meta holdout (``group_counts``), so the groups
            are the data's and do not depend on the meta protocol.
        group_rule: see :func:`~rs_metapeft.data.longtail.assign_groups`.
        many_threshold: many-group threshold.
        few_threshold: few-group threshold.
        groups: explicit group per class (overrides the rule).

    Returns:
        A JSON-ready dict with ``overall_accuracy``, ``class_mean_accuracy``, ``macro_f1``,
        ``group_accuracy`` (many / medium / few), ``groups_rule`` (as asked),
        ``groups_rule_used`` (what ``auto`` became), ``groups_description`` (the thresholds
        or count ranges, in words) and ``per_class`` rows.

    """
    confusion = np.asarray(confusion, dtype=np.float64)
    n = confusion.shape[0]
    if len(class_names) != n or len(train_counts) != n:
        raise ValueError(
            f"confusion matrix has {n} classes but {len(class_names)} names and "
            f"{len(train_counts)} training counts were given"
        )
    rule = "given" if groups is not None else group_rule
    used = "given" if groups is not None else group_rule_used(
        train_counts, group_rule, many_threshold, few_threshold)
    groups = list(groups) if groups is not None else assign_groups(
        train_counts, group_rule, many_threshold, few_threshold
    )
    tp = np.diag(confusion)
    support = confusion.sum(1)
    predicted = confusion.sum(0)
    recall = _safe_div(tp, support)
    precision = _safe_div(tp, predicted)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    evaluated = support > 0
    group_acc = {}
    for g in GROUPS:
        members = [i for i in range(n) if groups[i] == g and evaluated[i]]
        group_acc[g] = float(np.mean(recall[members])) if members else None
    return {
        "overall_accuracy": float(tp.sum() / max(confusion.sum(), 1)),
        "class_mean_accuracy": float(recall[evaluated].mean()) if evaluated.any() else 0.0,
        "macro_f1": float(f1[evaluated].mean()) if evaluated.any() else 0.0,
        "group_accuracy": group_acc,
        "groups_rule": rule,
        "groups_rule_used": used,
        "groups_description": describe_groups(train_counts, groups, rule, used, many_threshold,
                                              few_threshold),
        "num_test_images": int(confusion.sum()),
        "per_class": [
            {
                "class": class_names[i],
                "train_count": int(train_counts[i]),
                "group": groups[i],
                "test_count": int(support[i]),
                "accuracy": float(recall[i]),
                "f1": float(f1[i]),
            }
            for i in range(n)
        ],
        "confusion_matrix": confusion.astype(int).tolist(),
    }


def describe_groups(counts: Sequence[int], groups: Sequence[str], rule: str, used: str,
                    many_threshold: int = 100, few_threshold: int = 20) -> str:
    """How the classes were grouped, in one sentence naming the thresholds or count ranges.

    Example:
        >>> describe_groups([98, 70, 54], ["many", "medium", "few"], "auto", "quantile")
        'auto rule -> thirds by training count (many > 100 and few < 20 would leave a group empty): many 98, medium 70, few 54 training images'
    """  # noqa: E501 - a doctest's expected output is one line
    counts = [int(c) for c in counts]
    ranges = []
    for g in (*GROUPS, BALANCED):
        members = [c for c, group in zip(counts, groups, strict=True) if group == g]
        if members:
            low, high = min(members), max(members)
            ranges.append(f"{g} {low}" if low == high else f"{g} {low}-{high}")
    span = ", ".join(ranges) + " training images"
    head = f"{rule} rule -> " if rule != used else ""
    if used == "thresholds":
        return (f"{head}thresholds: many > {many_threshold}, few < {few_threshold} training "
                f"images ({span})")
    if used == "quantile":
        why = (f" (many > {many_threshold} and few < {few_threshold} would leave a group empty)"
               if rule == "auto" else "")
        return f"{head}thirds by training count{why}: {span}"
    if used == "balanced":
        return (f"{head}balanced: the largest class has at most {BALANCED_RATIO} times the "
                f"smallest one's images, so no class is head or tail ({span})")
    return f"groups given per class: {span}"
