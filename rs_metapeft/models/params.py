"""Exact trainable-parameter counts per configuration, and the table the docs render."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..peft import PeftConfig, gamma_parameters
from .classifier import SpectralViTClassifier

__all__ = ["count_parameters", "format_parameter_table", "parameter_table"]


def count_parameters(model: SpectralViTClassifier) -> dict[str, int]:
    """Trainable parameters of a model by part.

    Returns:
        ``peft`` (trainable backbone-side tensors: PEFT modules, or what a baseline unfreezes),
        ``gamma`` (modulators, trained by the meta step only), ``stem``, ``head``, ``trainable``
        (everything an optimiser updates, gamma included) and ``backbone`` (all backbone
        parameters, frozen or not, stem excluded).
    """
    stem_ids = {id(p) for p in model.spectral_stem.parameters()}
    head_ids = {id(p) for p in model.head.parameters()}
    gamma_ids = {id(p) for p in gamma_parameters(model).values()}
    counts = dict.fromkeys(("peft", "gamma", "stem", "head"), 0)
    backbone = 0
    for name, p in model.named_parameters():
        if id(p) in stem_ids:
            counts["stem"] += p.numel()
            continue
        if id(p) in head_ids:
            counts["head"] += p.numel()
            continue
        if id(p) in gamma_ids:
            counts["gamma"] += p.numel()
        elif p.requires_grad:
            counts["peft"] += p.numel()
        if name.startswith("backbone.") and not _is_added(name):
            backbone += p.numel()
    counts["trainable"] = sum(counts.values())
    counts["backbone"] = backbone
    return counts


def _is_added(name: str) -> bool:
    return any(part in name for part in (".lora.", ".adaptformer.", ".adapter.", ".vpt."))


def parameter_table(
    configs: Mapping[str, PeftConfig],
    bands: list[str],
    num_classes: int,
    **model_kwargs: Any,
) -> list[dict]:
    """Trainable-parameter counts of each named PEFT configuration on one backbone.

    Models are built with random weights (counts do not depend on them).

    Args:
        configs: PEFT configurations by label.
        bands: input band names.
        num_classes: number of classes.
        **model_kwargs: more :class:`~rs_metapeft.models.SpectralViTClassifier` arguments
            (``backbone``, ``img_size``, ``patch_size``, ``stem``, ``head``,
            ``backbone_kwargs``, ...); its defaults otherwise.

    Returns:
        One row per configuration: ``config`` plus the keys of :func:`count_parameters` and
        ``percent`` (trainable share of backbone + stem + head parameters).
    """
    rows = []
    for label, config in configs.items():
        model = SpectralViTClassifier(bands, num_classes, **{**model_kwargs, "weights": None},
                                      peft=config)
        counts = count_parameters(model)
        total = sum(p.numel() for p in model.parameters())
        rows.append({"config": label, **counts, "percent": 100.0 * counts["trainable"] / total})
    return rows


def format_parameter_table(rows: list[dict]) -> str:
    """A Markdown table of :func:`parameter_table` rows."""
    cols = ("peft", "gamma", "stem", "head", "trainable")
    lines = ["| configuration | " + " | ".join(cols) + " | % of model |",
             "|---|" + "---:|" * (len(cols) + 1)]
    for row in rows:
        cells = [f"{row[c]:,}" for c in cols] + [f"{row['percent']:.3f}"]
        lines.append(f"| {row['config']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


