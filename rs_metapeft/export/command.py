"""``rs-metapeft export``: turn a MetaPEFT training checkpoint into a self-describing export."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
import yaml

from ..checkpointing import read_checkpoint
from ..data.longtail import assign_groups
from ..io import refuse_existing
from ..models import SpectralViTClassifier
from ..peft.merge import merge_lora, prune_modules
from .artifact import ADAPTER_FILE, MANIFEST_FILE, ExportError, read_manifest, save_export

__all__ = ["describe_export", "evaluate", "export_checkpoint", "main", "model_from_checkpoint"]


def model_from_checkpoint(path: str | Path) -> tuple[SpectralViTClassifier, dict[str, Any]]:
    """The classifier inside a Lightning checkpoint of :class:`~rs_metapeft.tasks.MetaPEFTTask`.

    The backbone is rebuilt without loading its weights file (the checkpoint holds every tensor);
    the model still records the original weights id, so an export can stay adapter-only.

    Returns:
        ``(model, info)``: the model in eval mode and the checkpoint's ``rs_metapeft`` metadata
        plus ``groups`` (many / medium / few per class, by the task's grouping rule); a
        multi-label model's metadata holds ``multilabel`` and its per-label ``thresholds``.

    Raises:
        FileNotFoundError: no such file.
        CheckpointReadError: a truncated or corrupt checkpoint; the message names the file.
        ExportError: a checkpoint, but not of a MetaPEFTTask.
    """
    path = Path(path)
    ckpt = read_checkpoint(path)
    hp, info = ckpt.get("hyper_parameters"), ckpt.get("rs_metapeft")
    if not isinstance(hp, dict) or info is None or "state_dict" not in ckpt:
        raise ExportError(f"{path} is not a MetaPEFTTask checkpoint (no rs_metapeft metadata); "
                          "export checkpoints written by `rs-metapeft fit`")
    model = SpectralViTClassifier.from_config(hp, weights=None)
    model.config["weights"] = hp["weights"]
    state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()
             if k.startswith("model.")}
    model.load_state_dict(state)
    groups_cfg = hp.get("groups", {})
    counts = info.get("group_counts") or info.get("train_counts")
    groups = None
    if counts and any(counts):
        groups = assign_groups(counts, groups_cfg.get("rule", "auto"),
                               groups_cfg.get("many_threshold", 100),
                               groups_cfg.get("few_threshold", 20))
    return model.eval(), {**info, "groups": groups}


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches) -> dict[str, float]:
    """Overall and class-mean accuracy of ``model`` on batches of ``image`` / ``label`` dicts."""
    model.eval()
    device = next(model.parameters()).device
    correct, total, per_class = 0, 0, {}
    for batch in batches:
        preds = model(batch["image"].to(device)).argmax(1).cpu()
        labels = batch["label"].cpu()
        correct += int((preds == labels).sum())
        total += labels.numel()
        for c in labels.unique().tolist():
            mask = labels == c
            hit, n = per_class.get(c, (0, 0))
            per_class[c] = (hit + int((preds[mask] == c).sum()), n + int(mask.sum()))
    if not total:
        raise ValueError("evaluation got no images")
    return {"accuracy": correct / total,
            "class_mean_accuracy": sum(h / n for h, n in per_class.values()) / len(per_class),
            "images": total}


def datamodule_from_config(config_path: str | Path):
    """The datamodule of a run's LightningCLI ``config.yaml`` (its ``data`` section)."""
    from ..data.datamodules import build_datamodule

    config_path = Path(config_path)
    if not config_path.is_file():
        raise ExportError(f"data config {config_path} does not exist (the run's config.yaml)")
    return build_datamodule((yaml.safe_load(config_path.read_text()) or {}).get("data"),
                            str(config_path))


def export_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    prune_threshold: float | None = None,
    merge: bool = False,
    data_config: str | Path | None = None,
    split: str = "test",
    overwrite: bool = False,
    include_backbone: bool = False,
) -> dict[str, Any]:
    """Export a checkpoint: optionally prune near-zero-gamma modules and merge LoRA.

    A multi-label model's export carries ``multilabel``, its label names (``classes``) and
    per-label ``thresholds``, so that prediction from it writes the checkpoint's label sets.

    Args:
        checkpoint: a MetaPEFTTask checkpoint, or a run folder (its ``last.ckpt`` or newest).
        out_dir: export folder.
        prune_threshold: remove modules whose mean ``|gamma|`` is below this.
        merge: fold LoRA into the backbone weights (the export then holds the whole backbone).
        data_config: a run's ``config.yaml``; with it the accuracy before and after pruning and
            merging is measured on ``split`` and recorded in the manifest.
        split: ``val`` or ``test``.
        overwrite: replace an earlier export in ``out_dir``.
        include_backbone: write the base weights into the export too (self-contained); by
            default the manifest references them (weights file, hub name, this checkpoint).

    Returns:
        A summary: manifest path, removed modules, accuracies.

    Raises:
        FileExistsError: ``out_dir`` already holds an export and ``overwrite`` is off.
        ExportError: ``data_config`` for a multi-label model (the measure is single-label
            accuracy; test the export with ``rs_metapeft.evaluate`` instead).
    """
    from ..inference.checkpoint import find_checkpoint

    out = Path(out_dir)
    refuse_existing([out / MANIFEST_FILE, out / ADAPTER_FILE], overwrite)
    checkpoint = find_checkpoint(checkpoint)
    model, info = model_from_checkpoint(checkpoint)
    labels = None
    if info.get("multilabel"):
        if data_config is not None:
            raise ExportError(
                f"{checkpoint} holds a multi-label model; --data-config measures single-label "
                "accuracy. Export without it, then test the export on the recipe's data with "
                "rs_metapeft.evaluate(EXPORT, RECIPE)"
            )
        labels = {k: info.get(k) for k in ("thresholds", "thresholds_source", "train_samples")}
    batches = None
    if data_config is not None:
        dm = datamodule_from_config(data_config)
        dm.prepare_data()
        dm.setup("test" if split == "test" else "validate")
        loader = dm.test_dataloader() if split == "test" else dm.val_dataloader()
        batches = [dm.on_after_batch_transfer(b, 0) for b in loader]
    summary: dict[str, Any] = {"checkpoint": str(checkpoint), "removed": []}
    if batches is not None:
        summary["before"] = evaluate(model, batches)
    if prune_threshold is not None:
        model.pruned = prune_modules(model, prune_threshold)
        summary["removed"] = [list(p) for p in model.pruned]
        summary["prune_threshold"] = prune_threshold
    if merge:
        summary["merged_lora_modules"] = merge_lora(model)
        model.merged = True
    if batches is not None:
        summary["after"] = evaluate(model, batches)
        summary["accuracy_change"] = summary["after"]["accuracy"] - summary["before"]["accuracy"]
        summary["split"] = split
    extra = {"export": {k: v for k, v in summary.items() if k != "checkpoint"},
             "source_checkpoint": Path(checkpoint).name, "data": info.get("data") or {}}
    whole = True if include_backbone or merge else None
    summary["manifest"] = str(save_export(model, out_dir, info.get("classes"),
                                          info.get("train_counts"), info.get("groups"), extra,
                                          whole=whole, checkpoint=checkpoint,
                                          multilabel=labels,
                                          group_counts=info.get("group_counts")))
    return summary


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def describe_export(folder: str | Path) -> list[str]:
    """What an export folder holds, in lines for people: files and sizes, tensors, base, pruning.

    Args:
        folder: an export folder (written by :func:`export_checkpoint` or ``save_export``).
    """
    from .artifact import base_section, tensor_groups

    folder = Path(folder)
    manifest = read_manifest(folder)
    files = [MANIFEST_FILE, manifest["tensors"]["file"]]
    lines = [f"exported to {folder}/"]
    lines += [f"  {name:<22} {_size((folder / name).stat().st_size):>9}" for name in files]
    tensors = manifest["tensors"]
    groups = tensors.get("groups") or tensor_groups([], manifest["stem"])
    parts = [f"{n} {label}" for label, n in (("PEFT modules and gamma", groups["peft"]),
                                              ("stem", groups["stem"]), ("head", groups["head"]),
                                              ("normaliser", groups["normalizer"]),
                                              ("backbone", groups["backbone"])) if n]
    lines.append(f"  {tensors['count']} tensors: {', '.join(parts)}")
    base = base_section(manifest)
    if base["included"]:
        why = " (LoRA merged into it)" if manifest["merged"] else ""
        lines.append(f"  base weights: included{why}; the export needs no other file")
    else:
        where = []
        if base.get("file"):
            where.append(f"weights file {base['file']['path']}")
        if base.get("hub"):
            where.append(f"hub weights {base['hub']}")
        if base.get("checkpoint"):
            where.append(f"checkpoint {base['checkpoint']['path']}")
        lines.append(f"  base weights: not included ({base['tensor_count']} tensors); loading "
                     f"takes them from the {' or the '.join(where)} (--include-backbone for a "
                     "self-contained export)")
    if manifest.get("multilabel"):
        source = manifest.get("thresholds_source") or "recorded"
        lines.append(f"  multi-label: {len(manifest['classes'])} labels, each with its "
                     f"threshold ({source})")
    pruned = manifest["pruned"]
    lines.append(f"  pruned: {len(pruned)} modules {[tuple(p) for p in pruned]}" if pruned
                 else "  pruned: none")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run ``rs-metapeft export CHECKPOINT --out DIR [--prune-threshold T] [--merge] ...``."""
    parser = argparse.ArgumentParser(
        prog="rs-metapeft export",
        description="Export a MetaPEFT checkpoint as adapter.safetensors (the trained tensors) + "
                    "manifest.json (everything else, and where the base weights are).",
    )
    parser.add_argument("checkpoint", help="a .ckpt written by rs-metapeft fit, or a run folder")
    parser.add_argument("--out", required=True, help="export folder")
    parser.add_argument("--prune-threshold", type=float, default=None,
                        help="remove PEFT modules whose mean |gamma| is below this")
    parser.add_argument("--merge", action="store_true",
                        help="fold LoRA into the base weights (includes the backbone)")
    parser.add_argument("--include-backbone", action="store_true",
                        help="write the base weights into the export too (self-contained); by "
                             "default the manifest references them")
    parser.add_argument("--data-config", default=None,
                        help="the run's config.yaml, to report accuracy before/after pruning")
    parser.add_argument("--split", choices=("val", "test"), default="test")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier export in --out (refused otherwise)")
    args = parser.parse_args(argv)
    # Errors (ExportError, FileExistsError) reach `rs-metapeft`'s one-line handler.
    summary = export_checkpoint(args.checkpoint, args.out, args.prune_threshold, args.merge,
                                args.data_config, args.split, args.overwrite,
                                args.include_backbone)
    print("\n".join(describe_export(Path(summary["manifest"]).parent)))
    if summary["removed"]:
        print(f"pruned {len(summary['removed'])} modules below |gamma| < "
              f"{summary['prune_threshold']}")
    if "after" in summary:
        before, after = summary["before"]["accuracy"], summary["after"]["accuracy"]
        print(f"{summary['split']} accuracy {before:.4f} -> {after:.4f} "
              f"(change {after - before:+.4f})")
    return 0
