"""``rs-metapeft backbones``: the backbones a recipe can use, and what a recipe needs for one.

Two kinds: timm ViTs by name (RGB; ``model.weights`` ``null``, ``hub``, ``hf-hub:<repo>`` or a
local file), tested with every PEFT position and stem (:data:`TIMM_VITS`); and TorchGeo's
pretrained ViT weights (``model.weights: torchgeo:<Enum>.<MEMBER>``), with the bands, sensor and
input size they were pretrained on (:mod:`rs_metapeft.models.torchgeo_weights`). Nothing here
downloads or builds a model.
"""

from __future__ import annotations

import argparse
import textwrap
from dataclasses import dataclass
from itertools import groupby

from .torchgeo_weights import (
    NOT_SUPPORTED,
    PREFIX,
    TorchGeoWeights,
    list_torchgeo_weights,
    pretraining_moments,
    torchgeo_weights,
)

__all__ = ["TIMM_VITS", "TimmViT", "format_list", "main", "show"]


@dataclass(frozen=True)
class TimmViT:
    """A timm ViT the PEFT injection and every stem are tested with.

    Attributes:
        name: timm model name (``model.backbone``).
        width: embedding width.
        depth: transformer blocks.
        heads: attention heads.
        patch_size: patch size.
        img_size: the input size its ``hub`` weights were trained at.
        params_m: parameters, millions (without head).
        hub: the weights ``model.weights: hub`` loads (timm's default tag), RGB.
    """

    name: str
    width: int
    depth: int
    heads: int
    patch_size: int
    img_size: int
    params_m: float
    hub: str


#: timm ViTs known to work with the PEFT injection (tests/models/test_catalog.py builds each).
TIMM_VITS = (
    TimmViT("vit_tiny_patch16_224", 192, 12, 3, 16, 224, 5.5, "augreg_in21k_ft_in1k"),
    TimmViT("vit_small_patch16_224", 384, 12, 6, 16, 224, 21.7, "augreg_in21k_ft_in1k"),
    TimmViT("vit_base_patch16_224", 768, 12, 12, 16, 224, 85.8, "augreg2_in21k_ft_in1k"),
    TimmViT("vit_large_patch16_224", 1024, 24, 16, 16, 224, 303.3, "augreg_in21k_ft_in1k"),
    TimmViT("vit_huge_patch14_224", 1280, 32, 16, 14, 224, 630.8, "orig_in21k"),
    TimmViT("deit_tiny_patch16_224", 192, 12, 3, 16, 224, 5.5, "fb_in1k"),
    TimmViT("deit_small_patch16_224", 384, 12, 6, 16, 224, 21.7, "fb_in1k"),
    TimmViT("deit_base_patch16_224", 768, 12, 12, 16, 224, 85.8, "fb_in1k"),
    TimmViT("vit_small_patch14_dinov2", 384, 12, 6, 14, 518, 22.1, "lvd142m"),
    TimmViT("vit_base_patch14_dinov2", 768, 12, 12, 14, 518, 86.6, "lvd142m"),
    TimmViT("vit_large_patch14_dinov2", 1024, 24, 16, 14, 518, 304.4, "lvd142m"),
)


def _timm(name: str) -> TimmViT | None:
    return next((v for v in TIMM_VITS if v.name == name.split(".")[0]), None)


def _cached(spec: TorchGeoWeights) -> str:
    return "cached" if spec.cache_path.is_file() else ""


#: Sensors in listing order (the Sentinels first; TorchGeo lists Landsat first).
_SENSOR_ORDER = ("Sentinel-2", "Sentinel-1", "Landsat 8-9", "Landsat 7", "Landsat 4-5")


def _sensor_rank(spec: TorchGeoWeights) -> int:
    return next((i for i, s in enumerate(_SENSOR_ORDER) if spec.sensor.startswith(s)),
                len(_SENSOR_ORDER))


def _wrap(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, 100, initial_indent=indent, subsequent_indent=indent + "  ")


def format_list() -> str:
    """The listing ``rs-metapeft backbones`` prints."""
    lines = _wrap("timm ViTs (model.backbone), RGB: model.weights hub (timm's ImageNet weights), "
                  "hf-hub:<repo>, a local file, or null; the stems map any bands onto R, G, B")
    lines.append("")
    width = max(len(v.name) for v in TIMM_VITS)
    lines.append(f"  {'name':<{width}}  width  depth  patch  size  params  hub weights")
    for v in TIMM_VITS:
        lines.append(f"  {v.name:<{width}}  {v.width:>5}  {v.depth:>5}  {v.patch_size:>5}  "
                     f"{v.img_size:>4}  {v.params_m:>5.1f}M  {v.name}.{v.hub}")
    specs = sorted(list_torchgeo_weights(), key=_sensor_rank)  # stable: smaller models first
    if specs:
        cache = specs[0].cache_path.parent
        lines.append("")
        lines += _wrap("TorchGeo weights (model.weights: torchgeo:NAME), grouped by the bands "
                       "they take; the stems pass these bands through and map others onto them. "
                       f"Files are downloaded on first use into {cache}")
        lines.append("")
        width = max(len(s.id) - len(PREFIX) for s in specs)
        for (sensor, bands), group in groupby(specs, key=lambda s: (s.sensor, s.band_names)):
            lines += _wrap(f"{sensor}, {len(bands)} bands: {' '.join(bands)}", "  ")
            for s in group:
                pretraining = ", ".join(p for p in (s.dataset, s.method) if p)
                lines.append(f"    {s.id[len(PREFIX):]:<{width}}  {s.model:<24}  "
                             f"{s.img_size} px  {pretraining:<34}  {_cached(s)}".rstrip())
    lines += ["", "Not usable as backbones here:"]
    for enums, reason in NOT_SUPPORTED.items():
        lines += _wrap(f"{', '.join(enums)}: {reason}", "  ")
    lines += ["", "`rs-metapeft backbones show NAME` prints what a recipe needs for one."]
    return "\n".join(lines)


def _yaml_list(names) -> str:
    return "[" + ", ".join(names) + "]"


def _show_torchgeo(spec: TorchGeoWeights) -> str:
    moments = pretraining_moments(spec.id)
    norm = ("each band standardised with the training split's statistics, then given its "
            "pretraining mean and std (" + ("SSL4EO-S12 statistics after TorchGeo's transform"
                                             if moments else "") + ")") if moments else (
        "each band standardised with the training split's statistics (TorchGeo records no "
        "pretraining statistics for these weights)")
    where = ("cached" if spec.cache_path.is_file()
             else f"not cached: downloaded on first use from {spec.url}, or put the file there")
    method = f" with {spec.method}" if spec.method else ""
    lines = [
        f"# {spec.id[len(PREFIX):]}: timm {spec.model} (patch {spec.patch_size}, "
        f"{spec.img_size} px) pretrained{method} on {spec.dataset}",
        f"# Sensor: {spec.sensor}; bands as TorchGeo names them: {' '.join(spec.bands)}",
        f"# TorchGeo's input transform: {spec.normalization}; rs_metapeft "
        f"(model.normalization: pretrained): {norm}.",
        f"# File: {spec.cache_path} ({where})",
        "model:",
        f"  weights: {spec.id}",
        f"  backbone: {spec.model}",
        f"  patch_size: {spec.patch_size}        # a smaller patch is resampled (more tokens "
        "for small chips)",
        f"  img_size: {spec.img_size}          # pretrained size; others work (position "
        "embeddings are resampled)",
        "  stem: band_mix",
        "  normalization: pretrained",
        "data:",
        "  init_args:",
        f"    bands: {_yaml_list(spec.band_names)}   # pass straight through; other bands "
        "are mapped onto these",
    ]
    return "\n".join(lines)


def _show_timm(v: TimmViT) -> str:
    return "\n".join([
        f"# {v.name}: timm ViT, width {v.width}, {v.depth} blocks, {v.heads} heads, patch "
        f"{v.patch_size}, {v.img_size} px, {v.params_m:.1f}M parameters",
        f"# model.weights: hub loads {v.name}.{v.hub} (RGB; needs the internet or a filled "
        "Hugging Face cache); a local .pth/.safetensors of this model, or null (random)",
        "model:",
        f"  backbone: {v.name}",
        "  weights: hub",
        f"  patch_size: {v.patch_size}",
        f"  img_size: {v.img_size}          # others work (position embeddings are resampled)",
        "  stem: band_mix            # maps the data's bands onto R, G, B",
        "  normalization: pretrained",
    ])


def show(name: str) -> str:
    """What a recipe needs for one backbone: a commented YAML snippet.

    Args:
        name: a timm ViT name of :data:`TIMM_VITS`, or TorchGeo weights
            (``torchgeo:ViTSmall16_Weights.SENTINEL2_ALL_DINO``, the prefix may be left out).

    Raises:
        BackboneWeightsError: neither; the message lists what exists.
    """
    timm_vit = _timm(name)
    if timm_vit is not None:
        return _show_timm(timm_vit)
    if name.startswith(PREFIX) or "_Weights." in name:
        return _show_torchgeo(torchgeo_weights(name))
    from .backbone import BackboneWeightsError

    raise BackboneWeightsError(
        f"unknown backbone {name!r}: give a timm ViT of `rs-metapeft backbones` "
        f"({', '.join(v.name for v in TIMM_VITS)}) or TorchGeo weights such as "
        "ViTSmall16_Weights.SENTINEL2_ALL_DINO"
    )


def main(argv: list[str]) -> int:
    """``rs-metapeft backbones [show NAME]``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="rs-metapeft backbones",
        description="List the usable backbones (timm ViTs, TorchGeo weights with their bands, "
                    "sensor and input size), or show what a recipe needs for one.",
        epilog="Example:\n  rs-metapeft backbones\n"
               "  rs-metapeft backbones show ViTSmall16_Weights.SENTINEL2_ALL_DINO",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action")
    sub.add_parser("list", help="list the backbones (the default)")
    show_parser = sub.add_parser("show", help="print a recipe snippet for one backbone")
    show_parser.add_argument("name", help="a timm ViT name or TorchGeo weights (Enum.MEMBER)")
    args = parser.parse_args(argv)
    # An unknown name raises BackboneWeightsError: `rs-metapeft` shows it as one line.
    print(show(args.name) if args.action == "show" else format_list())
    return 0
