"""Backbone loading: a timm ViT by name, weights from a hub, a local file, TorchGeo, or none."""

from __future__ import annotations

import os
from pathlib import Path

import timm
import torch
from torch import nn

from .torchgeo_weights import is_torchgeo, load_into, torchgeo_weights

__all__ = ["BackboneWeightsError", "create_backbone"]


class BackboneWeightsError(RuntimeError):
    """Pretrained weights that could not be loaded; the message says from where and what to do."""


def _is_local(weights: str) -> bool:
    return weights.endswith((".pth", ".pt", ".bin", ".safetensors")) or os.sep in weights


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def create_backbone(
    name: str = "vit_tiny_patch16_224",
    weights: str | None = None,
    img_size: int = 64,
    patch_size: int | None = 8,
    in_chans: int = 3,
    **timm_kwargs,
) -> nn.Module:
    """Create a timm ViT feature extractor (no classifier) with optional pretrained weights.

    Args:
        name: timm model name, e.g. ``vit_tiny_patch16_224`` or ``vit_base_patch16_224``.
        weights: ``None`` (random initialisation), a local ``.pth``/``.safetensors`` state dict,
            ``"hub"`` / ``"hf-hub:<repo>"`` for timm's pretrained weights (needs the internet or a
            filled Hugging Face cache), or ``"torchgeo:<Enum>.<MEMBER>"`` for TorchGeo's (the
            torch hub cache, else a download; ``name`` must be their architecture and
            ``in_chans`` their band count, see
            :func:`~rs_metapeft.models.torchgeo_weights.weights_settings`).
        img_size: input size; timm resamples position embeddings of pretrained weights.
        patch_size: patch size (``None`` keeps the model's own; a change resamples the patch
            embedding of pretrained weights).
        in_chans: input channels of the patch embedding (a local file's patch embedding must
            have as many).
        **timm_kwargs: more arguments of the timm model (e.g. ``depth``, ``drop_path_rate``).

    Returns:
        The model; ``model(x)`` returns pooled features of width ``model.num_features``.

    Raises:
        BackboneWeightsError: the file is missing or does not fit, or the hub is unreachable.
    """
    kwargs: dict = dict(num_classes=0, img_size=img_size, in_chans=in_chans, **timm_kwargs)
    if patch_size is not None:
        kwargs["patch_size"] = patch_size
    if weights is None:
        return timm.create_model(name, pretrained=False, **kwargs)
    if is_torchgeo(weights):
        spec = torchgeo_weights(weights)
        if in_chans != len(spec.bands):
            raise BackboneWeightsError(
                f"{spec.id} takes {len(spec.bands)} bands ({', '.join(spec.band_names)}), the "
                f"backbone was asked for {in_chans} input channels"
            )
        model = timm.create_model(name, pretrained=False, **kwargs)
        load_into(model, weights)
        return model
    if weights == "hub" or weights.startswith("hf-hub:"):
        model_name = weights if weights.startswith("hf-hub:") else name
        try:
            return timm.create_model(model_name, pretrained=True, **kwargs)
        except Exception as err:  # hub errors come in many types; all mean the same to a user
            hint = " (HF_HUB_OFFLINE=1 is set and the weights are not cached)" if _offline() else ""
            raise BackboneWeightsError(
                f"could not fetch pretrained weights for {model_name!r} from the hub{hint}: {err}. "
                "Download them where the internet is reachable and pass the file as "
                "model.weights=/path/to/weights.pth, or set model.weights=null to start from "
                "random initialisation."
            ) from err
    if _is_local(weights) or Path(weights).exists():
        path = Path(weights)
        if not path.is_file():
            raise BackboneWeightsError(
                f"backbone weights file {path} does not exist; check model.weights "
                "(a .pth or .safetensors state dict), or set it to null"
            )
        overlay: dict = dict(file=str(path), num_classes=0)
        if in_chans != 3:  # a multispectral file: its patch embedding loads as it is, unadapted
            overlay["first_conv"] = None
        try:
            return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay,
                                     **kwargs)
        except (RuntimeError, KeyError, ValueError) as err:
            raise BackboneWeightsError(
                f"weights in {path} do not fit timm model {name!r}: {err}. Check model.backbone "
                "and model.patch_size match the architecture the file was saved from."
            ) from err
    raise BackboneWeightsError(
        f"model.weights={weights!r} is neither a file nor 'hub' / 'hf-hub:<repo>' / "
        "'torchgeo:<Enum>.<MEMBER>'; give a path to a .pth/.safetensors file, 'hub', TorchGeo "
        "weights (`rs-metapeft backbones` lists them), or null"
    )


def imagenet_rgb_stats() -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet mean and std of R, G, B (what RGB-pretrained timm ViTs expect)."""
    return torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
