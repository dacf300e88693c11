"""Self-describing exports: the trained tensors plus a JSON manifest, and loading them back.

An export holds what fine-tuning changed (PEFT modules and modulators, stem, head, band
statistics, and the backbone tensors a baseline trained) in ``adapter.safetensors``, and in
``manifest.json`` everything needed to rebuild the model and refuse data it was not made for:
backbone, bands, statistics, stem, classes, groups, gamma map, versions (a multi-label model:
``multilabel`` and the per-label ``thresholds`` its label sets need), and a reference to the
base weights under the adapter (section ``base``): the weights file (name, path, sha256), the hub
name, and the training checkpoint they can also be taken from, with a checksum of the base
tensors themselves. ``include_backbone`` (``--include-backbone``) writes the base weights into
the export instead, which then needs nothing else; a merged model is always exported so.

The manifest carries a checksum of all of itself (``manifest_sha256``; the tensors' own checksum
is one of its fields), so an edited class name, band list, statistic or backbone setting is
refused on load instead of silently changing what the model means. Loading never downloads
backbone weights from a hub unless the caller asks for it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import timm
import torch
from safetensors.torch import load_file, save_file

from .._version import __version__
from ..checkpointing import read_checkpoint
from ..io import atomic_path, atomic_write_json, path_inside
from ..models import SpectralViTClassifier
from ..models.stem import PATCH_STEMS
from ..models.torchgeo_weights import PREFIX as TORCHGEO_PREFIX
from ..peft import PeftConfig, gamma_map, gamma_parameters
from ..peft.merge import remove_module

__all__ = [
    "ADAPTER_FILE",
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "ExportError",
    "adapter_state",
    "base_section",
    "load_export",
    "read_manifest",
    "save_export",
    "tensor_groups",
    "tensors_sha256",
    "write_manifest",
]

#: 2: the manifest's checksum covers the whole manifest (1 covered only the tensors).
#: 3: the base weights are referenced (``base``), not included, unless asked; 2 is still read.
#: 4: a multi-label model (``multilabel``, ``thresholds``); written only for those, so that a
#: reader of format 3 refuses them instead of predicting one class per chip.
FORMAT_VERSION = 4
#: The format of a single-label export (it needs nothing of format 4).
SINGLE_LABEL_FORMAT = 3
ADAPTER_FILE = "adapter.safetensors"
MANIFEST_FILE = "manifest.json"
#: The manifest field holding the checksum of the rest of the manifest.
CHECKSUM_FIELD = "manifest_sha256"
_ADDED = (".lora.", ".adaptformer.", ".adapter.", ".vpt.")
#: How to hand base weights to a loader, for the messages that ask for them.
_WEIGHTS_FLAG = ("--weights FILE (rs-metapeft predict-chips / predict-scene) or weights=FILE "
                 "(rs_metapeft.load_model, rs_metapeft.export.load_export)")


class ExportError(ValueError):
    """An export folder that cannot be read or does not fit; the message says what to do."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tensors_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 of named tensors: names, dtypes, shapes and bytes, in name order.

    The identity of base weights wherever they come from (a weights file read by timm, a
    training checkpoint, the hub), which a file's own checksum cannot give.
    """
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{tensor.dtype}|{tuple(state[name].shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
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
    """Weights fetched by name (timm's hub, Hugging Face, TorchGeo's), not read from a file."""
    return weights == "hub" or str(weights).startswith(("hf-hub:", TORCHGEO_PREFIX))


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


def tensor_groups(names: list[str], stem: str) -> dict[str, int]:
    """How many of an export's tensors are PEFT modules and gamma, stem, head, normaliser, backbone.

    Args:
        names: tensor names of the model's state dict.
        stem: the model's stem kind (a patch stem lives at ``backbone.patch_embed.proj``).
    """
    groups = dict.fromkeys(("peft", "stem", "head", "normalizer", "backbone"), 0)
    for name in names:
        if any(a in name for a in _ADDED) or name.endswith("gamma"):
            groups["peft"] += 1
        elif name.startswith("stem.") or (stem in PATCH_STEMS
                                          and name.startswith("backbone.patch_embed.proj.")):
            groups["stem"] += 1
        elif name.startswith(("head.", "normalizer.")):
            groups[name.split(".")[0]] += 1
        else:
            groups["backbone"] += 1
    return groups


def _base_reference(model: SpectralViTClassifier, adapter: Mapping[str, torch.Tensor],
                    checkpoint: str | Path | None) -> dict[str, Any]:
    """The manifest's ``base`` section of an adapter-only export: where its base weights are."""
    base = {k: v for k, v in model.state_dict().items() if k not in adapter}
    weights = model.config["weights"]
    file = None
    if weights is not None and not _is_hub(weights):
        path = Path(weights)
        file = {"name": path.name, "path": str(path.resolve()) if path.is_file() else weights,
                "sha256": _sha256(path) if path.is_file() else None}
    hub = None
    if _is_hub(weights):
        hub = weights if weights != "hub" else f"timm:{model.config['backbone']}"
    ckpt = None
    if checkpoint is not None:
        ckpt = {"name": Path(checkpoint).name, "path": str(Path(checkpoint).resolve())}
    return {"included": False, "weights": weights, "file": file, "hub": hub, "checkpoint": ckpt,
            "tensor_count": len(base), "tensors_sha256": tensors_sha256(base)}


def save_export(
    model: SpectralViTClassifier,
    out_dir: str | Path,
    classes: list[str] | None = None,
    train_counts: list[int] | None = None,
    groups: list[str] | None = None,
    extra: dict[str, Any] | None = None,
    whole: bool | None = None,
    checkpoint: str | Path | None = None,
    multilabel: Mapping[str, Any] | None = None,
    group_counts: list[int] | None = None,
) -> Path:
    """Write ``adapter.safetensors`` and ``manifest.json`` into ``out_dir``.

    Args:
        model: the fine-tuned model (merged and/or pruned ones too).
        out_dir: output folder (created).
        classes: class names (default ``"0"``, ``"1"``, ...).
        train_counts: training images per class.
        groups: many / medium / few group of each class.
        extra: more manifest entries (e.g. a pruning record).
        whole: also write the frozen backbone weights (a self-contained export). By default
            only where there is nothing to reference: LoRA merged into the backbone, or a
            randomly initialised backbone (no weights id) without a ``checkpoint``.
        checkpoint: the training checkpoint the model came from; the base weights can be taken
            from it (the only place a random initialisation's are).
        multilabel: for a multi-label model, its per-label ``thresholds`` (one per class, in
            order; a label is predicted where its sigmoid score reaches its threshold) and
            optionally ``thresholds_source`` and ``train_samples``; the manifest then says
            ``multilabel: true`` and carries them.
        group_counts: the counts that decided ``groups`` (the training split before a meta
            holdout; default ``train_counts``), so an evaluation of the export groups alike.

    Returns:
        The manifest path.

    Raises:
        ExportError: ``whole=False`` for a merged model (its base weights changed) or for a
            random backbone without a checkpoint (nothing to reference); ``multilabel``
            without one threshold per class.
    """
    out = Path(out_dir)
    labels = _multilabel_section(multilabel, model.config["num_classes"])
    config = dict(model.config)
    merged = bool(getattr(model, "merged", False))
    referable = config["weights"] is not None or checkpoint is not None
    if whole is None:
        whole = merged or not referable
    elif not whole and (merged or not referable):
        raise ExportError("this model must be exported with its backbone: "
                          + ("LoRA was merged into the base weights" if merged else
                             "its backbone was randomly initialised and no checkpoint holds it"))
    state = adapter_state(model, whole)
    base = {"included": True} if whole else _base_reference(model, state, checkpoint)
    if not whole and base["tensor_count"] == 0:  # full fine-tuning: the adapter is all of it
        base = {"included": True}
    out.mkdir(parents=True, exist_ok=True)
    tensors_path = out / ADAPTER_FILE
    with atomic_path(tensors_path) as tmp:
        save_file(state, tmp)
    norm = model.normalizer
    manifest = {
        "format": "rs_metapeft-export",
        "format_version": FORMAT_VERSION if labels["multilabel"] else SINGLE_LABEL_FORMAT,
        "model": config,
        "base": base,
        "merged": merged,
        "pruned": [list(p) for p in getattr(model, "pruned", [])],
        "bands": list(model.bands),
        "band_mean": norm.mean.tolist(),
        "band_std": norm.std.tolist(),
        "statistics_fitted": bool(norm.fitted),
        "stem": config["stem"],
        "classes": list(classes) if classes else [str(i) for i in range(config["num_classes"])],
        "train_counts": list(train_counts) if train_counts else None,
        "group_counts": list(group_counts or train_counts or []) or None,
        "groups": list(groups) if groups else None,
        **labels,
        "gamma": {str(k): v for k, v in gamma_map(model).items()},
        "tensors": {"file": ADAPTER_FILE, "count": len(state),
                    "groups": tensor_groups(list(state), config["stem"]),
                    "sha256": _sha256(tensors_path)},
        "versions": {"rs_metapeft": __version__, "torch": torch.__version__,
                     "timm": timm.__version__},
        **(extra or {}),
    }
    return write_manifest(out, manifest)


def _multilabel_section(multilabel: Mapping[str, Any] | None, num_classes: int
                        ) -> dict[str, Any]:
    """The manifest's ``multilabel`` entry, with a multi-label model's thresholds."""
    if multilabel is None:
        return {"multilabel": False}
    thresholds = [float(t) for t in multilabel.get("thresholds") or []]
    if len(thresholds) != num_classes:
        raise ExportError(f"a multi-label export needs one threshold per label ({num_classes}), "
                          f"got {len(thresholds)}; pass the task's thresholds")
    return {"multilabel": True, "thresholds": thresholds,
            "thresholds_source": multilabel.get("thresholds_source"),
            "train_samples": multilabel.get("train_samples")}


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


def base_section(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest's ``base`` section; a format-2 manifest said the same in two fields."""
    if "base" in manifest:
        return manifest["base"]
    weights = manifest["model"]["weights"]
    file = None
    if weights is not None and not _is_hub(weights):
        file = {"name": Path(weights).name, "path": weights,
                "sha256": manifest.get("weights_sha256")}
    hub = (weights if weights != "hub" else f"timm:{manifest['model']['backbone']}"
           if _is_hub(weights) else None)
    return {"included": bool(manifest["base_included"]), "weights": weights, "file": file,
            "hub": hub, "checkpoint": None, "tensor_count": None, "tensors_sha256": None}


def _missing_base(folder: Path, base: dict[str, Any], problem: str | None = None) -> ExportError:
    """The one error of an adapter whose base weights are nowhere to be found."""
    problem = problem or (f"{folder} holds only the trained tensors, and the base weights under "
                          "them were not found")
    wanted = []
    if base.get("file"):
        file = base["file"]
        sha = f"sha256 {file['sha256']}, " if file.get("sha256") else ""
        wanted.append(f"the weights file {file['name']} ({sha}trained from {file['path']})")
    if base.get("hub"):
        wanted.append(f"the hub weights {base['hub']} (their file, or allow_download=True / "
                      "--allow-download to fetch them)")
    if base.get("checkpoint"):
        ckpt = base["checkpoint"]
        wanted.append(f"the training checkpoint {ckpt['name']} (was {ckpt['path']})")
    return ExportError(
        f"{problem}: provide {' or '.join(wanted)} with {_WEIGHTS_FLAG}; or export again with "
        "--include-backbone for a self-contained export"
    )


def _find_base(folder: Path, base: dict[str, Any], weights: str | None,
               allow_download: bool) -> tuple[str, str]:
    """Where to take an adapter's base weights from: ``(kind, source)``.

    ``kind`` is ``file`` (a weights file, read by timm as at training), ``hub`` or
    ``checkpoint`` (the base tensors of a training checkpoint). ``weights`` (the caller's) wins;
    else the reference's file (at its path, or by name in the export folder or beside it), the
    training checkpoint, and the hub where downloading is allowed.
    """
    file = base.get("file") or {}
    expected = file.get("sha256")
    if weights is not None:
        path = Path(weights)
        if _is_hub(weights):
            if not allow_download:
                raise _missing_base(folder, {**base, "hub": weights})
            return "hub", weights
        if path.is_dir() or path.suffix == ".ckpt":
            from ..inference.checkpoint import find_checkpoint

            return "checkpoint", str(find_checkpoint(path))
        if not path.is_file():
            raise _missing_base(folder, base, f"base weights file {path} does not exist")
        if expected and _sha256(path) != expected:
            raise ExportError(
                f"backbone weights {path} differ from the ones this adapter was trained on "
                f"({file['name']}, sha256 {expected}): pass the original file with "
                f"{_WEIGHTS_FLAG}"
            )
        return "file", str(path)
    if file:
        places = [Path(file["path"]), folder / file["name"], folder.parent / file["name"]]
        for path in places:
            if path.is_file() and (not expected or _sha256(path) == expected):
                return "file", str(path)
    ckpt = base.get("checkpoint")
    if ckpt and Path(ckpt["path"]).is_file():
        return "checkpoint", ckpt["path"]
    if base.get("hub") and allow_download:
        return "hub", base["weights"]
    raise _missing_base(folder, base)


def _checkpoint_base(path: str, names: list[str]) -> dict[str, torch.Tensor]:
    """The base tensors ``names`` (model names) from a training checkpoint's state dict."""
    state = read_checkpoint(path).get("state_dict")
    if not isinstance(state, dict):
        raise ExportError(f"{path} is not a training checkpoint (no state_dict): pass the "
                          "checkpoint `rs-metapeft fit` wrote, or the original weights file")
    missing = [n for n in names if f"model.{n}" not in state]
    if missing:
        raise ExportError(f"{path} lacks the base tensors {missing[:3]}: it is a checkpoint of "
                          "another model; pass the run's own checkpoint or weights file")
    return {n: state[f"model.{n}"] for n in names}


def load_export(folder: str | Path, weights: str | None = None,
                allow_download: bool = False) -> SpectralViTClassifier:
    """Rebuild the model of an export folder, ready for inference.

    Args:
        folder: what :func:`save_export` wrote.
        weights: the base weights to load under an adapter-only export, if not where its
            reference says: the weights file (its checksum must match), a training checkpoint
            or run folder of the same base, or a hub id (with ``allow_download``).
        allow_download: an adapter-only export of hub weights (``hub``, ``hf-hub:<repo>``,
            ``torchgeo:<Enum>.<MEMBER>``) may fetch them (or take them from the Hugging Face or
            torch hub cache). Off by default: an export never reaches for the network unless
            asked.

    Raises:
        ExportError: missing files, an edited manifest, a ``tensors.file`` outside ``folder``,
            base weights that are nowhere to be found (the message names the file to provide
            and how), weights or tensors that differ from the recorded ones.
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
    base = base_section(manifest)
    kind, source = "included", None
    if not base["included"]:
        kind, source = _find_base(folder, base, weights, allow_download)
    config["weights"] = source if kind in ("file", "hub") else None
    model = SpectralViTClassifier.from_config(config, peft=peft)
    for layer, position in manifest["pruned"]:
        remove_module(model, layer, position)
    model.pruned = [tuple(p) for p in manifest["pruned"]]
    model.merged = manifest["merged"]
    state = load_file(str(tensors_path))
    base_names = [k for k in model.state_dict() if k not in state]
    if kind == "checkpoint":
        model.load_state_dict(_checkpoint_base(source, base_names), strict=False)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected:
        raise ExportError(f"{tensors_path} holds tensors this model has no place for: "
                          f"{unexpected[:5]}; the manifest and tensors do not belong together")
    not_base = [k for k in missing if k in adapter_state(model)]
    if not_base:
        raise ExportError(f"{tensors_path} lacks fine-tuned tensors {not_base[:5]}")
    expected = base.get("tensors_sha256")
    if expected:
        current = model.state_dict()
        if tensors_sha256({k: current[k] for k in base_names}) != expected:
            versions = manifest.get("versions", {})
            raise ExportError(
                f"the base weights from {source} differ from the ones this adapter was trained "
                f"on (the checksum of their {len(base_names)} tensors is not {expected[:16]}...; "
                f"exported with timm {versions.get('timm')}, this is timm {timm.__version__}): "
                f"provide the original ones with {_WEIGHTS_FLAG}"
            )
    return model.eval()
