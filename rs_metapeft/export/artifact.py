"""Self-describing exports: adapter-only safetensors plus a JSON manifest, and loading them back.

An export holds what fine-tuning changed (PEFT modules and modulators, stem, head, band
statistics, and the backbone tensors a baseline trained) in ``adapter.safetensors``, and in
``manifest.json`` everything needed to rebuild the model and refuse data it was not made for:
backbone and weights id, bands, statistics, stem, classes, groups, gamma map, versions. A model
whose backbone started from random weights (no weights id to reload) is exported whole.

The manifest carries a checksum of all of itself (``manifest_sha256``; the tensors' own checksum
is one of its fields), so an edited class name, band list, statistic or backbone setting is
refused on load instead of silently changing what the model means. Loading never downloads
backbone weights from a hub unless the caller asks for it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import timm
import torch
from safetensors.torch import load_file, save_file

from .._version import __version__
from ..io import atomic_path, atomic_write_json, path_inside
from ..models import SpectralViTClassifier
from ..peft import PeftConfig, gamma_map, gamma_parameters
from ..peft.merge import remove_module

__all__ = [
    "ADAPTER_FILE",
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "ExportError",
    "adapter_state",
    "load_export",
    "read_manifest",
    "save_export",
    "write_manifest",
]

#: 2: the manifest's checksum covers the whole manifest (1 covered only the tensors).
FORMAT_VERSION = 2
ADAPTER_FILE = "adapter.safetensors"
MANIFEST_FILE = "manifest.json"
#: The manifest field holding the checksum of the rest of the manifest.
CHECKSUM_FIELD = "manifest_sha256"
_ADDED = (".lora.", ".adaptformer.", ".adapter.", ".vpt.")


class ExportError(ValueError):
    """An export folder that cannot be read or does not fit; the message says what to do."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of the manifest without its checksum field, in a canonical JSON form."""
    body = {k: v for k, v in manifest.items() if k != CHECKSUM_FIELD}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def write_manifest(folder: str | Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` into ``folder`` (atomically) with the checksum of all of it.

    Returns:
        The manifest path.
    """
    manifest = json.loads(json.dumps(manifest))  # hash exactly what a reader will parse
    manifest[CHECKSUM_FIELD] = _manifest_digest(manifest)
    return atomic_write_json(Path(folder) / MANIFEST_FILE, manifest)


def _is_hub(weights: str | None) -> bool:
    return weights == "hub" or str(weights).startswith("hf-hub:")


def adapter_state(model: SpectralViTClassifier, whole: bool = False) -> dict[str, torch.Tensor]:
    """The tensors an adapter-only export holds.

    Everything outside the backbone (normaliser statistics, pixel stem, head), every tensor that
    PEFT added to the backbone (modules and modulators), and every backbone tensor that trains
    (a patch stem, BitFit biases, full fine-tuning). Frozen pretrained backbone weights are left
    out unless ``whole``.
    """
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    trainable |= set(gamma_parameters(model))
    state = {}
    for name, tensor in model.state_dict().items():
        keep = (whole or not name.startswith("backbone.") or any(a in name for a in _ADDED)
                or name in trainable)
        if keep:
            state[name] = tensor.detach().cpu().contiguous()
    return state



def save_export(
    model: SpectralViTClassifier,
    out_dir: str | Path,
    classes: list[str] | None = None,
    train_counts: list[int] | None = None,
    groups: list[str] | None = None,
    extra: dict[str, Any] | None = None,
    whole: bool | None = None,
) -> Path:
    """Write ``adapter.safetensors`` and ``manifest.json`` into ``out_dir``.

    Args:
        model: the fine-tuned model (merged and/or pruned ones too).
        out_dir: output folder (created).
        classes: class names (default ``"0"``, ``"1"``, ...).
        train_counts: training images per class.
        groups: many / medium / few group of each class.
        extra: more manifest entries (e.g. a pruning record).
        whole: also write the frozen backbone weights; by default only where the backbone has
            no weights id to reload (random initialisation) or LoRA was merged into it.

    Returns:
        The manifest path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = dict(model.config)
    merged = bool(getattr(model, "merged", False))
    if whole is None:
        whole = config["weights"] is None or merged
    state = adapter_state(model, whole)
    tensors_path = out / ADAPTER_FILE
    with atomic_path(tensors_path) as tmp:
        save_file(state, tmp)
    weights = config["weights"]
    weights_sha = _sha256(Path(weights)) if weights and Path(weights).is_file() else None
    norm = model.normalizer
    manifest = {
        "format": "rs_metapeft-export",
        "format_version": FORMAT_VERSION,
        "model": config,
        "weights_sha256": weights_sha,
        "base_included": whole,
        "merged": merged,
        "pruned": [list(p) for p in getattr(model, "pruned", [])],
        "bands": list(model.bands),
        "band_mean": norm.mean.tolist(),
        "band_std": norm.std.tolist(),
        "statistics_fitted": bool(norm.fitted),
        "stem": config["stem"],
        "classes": list(classes) if classes else [str(i) for i in range(config["num_classes"])],
        "train_counts": list(train_counts) if train_counts else None,
        "groups": list(groups) if groups else None,
        "gamma": {str(k): v for k, v in gamma_map(model).items()},
        "tensors": {"file": ADAPTER_FILE, "count": len(state),
                    "sha256": _sha256(tensors_path)},
        "versions": {"rs_metapeft": __version__, "torch": torch.__version__,
                     "timm": timm.__version__},
        **(extra or {}),
    }
    return write_manifest(out, manifest)


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of an export folder, checked against its own checksum.

    Raises:
        ExportError: no manifest, not an rs_metapeft export, a newer format, or a manifest that
            does not match its checksum (edited or damaged); the message names the file.
    """
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise ExportError(f"{path} does not exist: pass the folder that `rs-metapeft export` wrote")
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ExportError(f"{path} is not valid JSON ({err}); export the checkpoint again") from err
    if not isinstance(manifest, dict) or manifest.get("format") != "rs_metapeft-export":
        raise ExportError(f"{path} is not an rs_metapeft export manifest (no format field)")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise ExportError(f"{path} has format version {manifest['format_version']}; this "
                          f"rs_metapeft reads up to {FORMAT_VERSION}: upgrade rs_metapeft")
    if CHECKSUM_FIELD not in manifest:
        raise ExportError(
            f"{path} has no {CHECKSUM_FIELD} (written by an older rs_metapeft, or stripped): its "
            "classes, bands and settings cannot be trusted; export the checkpoint again"
        )
    if manifest[CHECKSUM_FIELD] != _manifest_digest(manifest):
        raise ExportError(
            f"{path} does not match its checksum ({CHECKSUM_FIELD}): it was edited or damaged "
            "after export. Classes, bands, statistics and backbone settings are part of the "
            "model; export the checkpoint again instead of editing the manifest"
        )
    return manifest


def _tensors_path(folder: Path, manifest: dict[str, Any]) -> Path:
    """The manifest's ``tensors.file``, which must lie inside the export folder."""
    name = manifest["tensors"]["file"]
    path = path_inside(folder, name)
    if path is None:
        raise ExportError(
            f"{folder / MANIFEST_FILE}: tensors.file {name!r} points outside the export folder "
            f"{folder}; an export loads only its own files (keep {ADAPTER_FILE} in the folder)"
        )
    return path


def load_export(folder: str | Path, weights: str | None = None,
                allow_download: bool = False) -> SpectralViTClassifier:
    """Rebuild the model of an export folder, ready for inference.

    Args:
        folder: what :func:`save_export` wrote.
        weights: the backbone weights to load under the adapter, if not the manifest's own
            weights id (e.g. the same file at another path; its checksum must match).
        allow_download: an adapter-only export of hub weights (``hub``, ``hf-hub:<repo>``) may
            fetch them (or take them from the Hugging Face cache). Off by default: an export
            never reaches for the network unless asked.

    Raises:
        ExportError: missing files, an edited manifest, a ``tensors.file`` outside ``folder``,
            hub weights without ``allow_download``, mismatching weights or tensors.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    config = dict(manifest["model"])
    tensors_path = _tensors_path(folder, manifest)
    if not tensors_path.is_file():
        raise ExportError(f"{tensors_path} is missing; the export folder is incomplete")
    if _sha256(tensors_path) != manifest["tensors"]["sha256"]:
        raise ExportError(f"{tensors_path} does not match the checksum in its manifest")
    peft = PeftConfig(**config.pop("peft"))
    if manifest["merged"]:  # LoRA lives in the (included) base weights now
        peft.positions = [p for p in peft.positions if p in ("adaptformer", "adapter")]
    if manifest["base_included"]:
        config["weights"] = None
    else:
        config["weights"] = weights or config["weights"]
        if _is_hub(config["weights"]) and not allow_download:
            raise ExportError(
                f"{folder} holds only the adapter; its backbone weights are "
                f"{config['weights']!r} from the hub, and loading an export downloads nothing "
                "unless asked: pass the weights file (weights=..., --weights FILE) or "
                "allow_download=True (--allow-download)"
            )
        expected = manifest.get("weights_sha256")
        path = Path(config["weights"]) if config["weights"] else None
        if expected and path is not None and path.is_file() and _sha256(path) != expected:
            raise ExportError(
                f"backbone weights {path} differ from the ones this adapter was trained on "
                f"(sha256 {expected[:12]}...): pass the original file with weights=..."
            )
    model = SpectralViTClassifier.from_config(config, peft=peft)
    for layer, position in manifest["pruned"]:
        remove_module(model, layer, position)
    model.pruned = [tuple(p) for p in manifest["pruned"]]
    model.merged = manifest["merged"]
    state = load_file(str(tensors_path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected:
        raise ExportError(f"{tensors_path} holds tensors this model has no place for: "
                          f"{unexpected[:5]}; the manifest and tensors do not belong together")
    not_base = [k for k in missing if k in adapter_state(model)]
    if not_base:
        raise ExportError(f"{tensors_path} lacks fine-tuned tensors {not_base[:5]}")
    return model.eval()
