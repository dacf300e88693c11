"""TorchGeo's pretrained ViT weights as backbones: ``model.weights: torchgeo:<Enum>.<MEMBER>``.

TorchGeo ships weight enums for timm ViTs pretrained on remote sensing (``ViTSmall16_Weights``
and its Base, Large, Huge and DINOv2 siblings): Sentinel-2 13-band, Sentinel-1 GRD VV/VH and
Landsat weights, each with ``meta["bands"]``, ``meta["in_chans"]`` and ``meta["model"]`` (the timm
name). This module is what the rest of the package needs of them:

* :func:`list_torchgeo_weights` and :func:`torchgeo_weights`: every such enum member, described
  (timm model, patch and input size, the bands as band-registry names, sensor, pretraining);
  no download, no file access.
* :func:`weights_settings`: the backbone name, patch size and backbone bands a recipe gets from
  the weights (unless it gives them).
* :func:`load_into`: the weights loaded into a timm ViT through TorchGeo's own
  ``WeightsEnum.get_state_dict`` (torch hub: the cache first, then the download), with timm's
  resampling of position and patch embeddings; a missing file gives one error naming the file
  and the cache folder.
* :func:`pretraining_moments`: the per-band mean and std of the inputs the weights were
  pretrained on, derived from the enum's own transforms and TorchGeo's band statistics, which
  the model's normaliser maps the data onto (``model.normalization: pretrained``).

DOFA is not among them: see :data:`NOT_SUPPORTED`.
"""

from __future__ import annotations

import inspect
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..bands import OPTICAL, Band, UnknownBandError, resolve_band

__all__ = [
    "NOT_SUPPORTED",
    "PREFIX",
    "TorchGeoWeights",
    "backbone_band_names",
    "is_torchgeo",
    "list_torchgeo_weights",
    "load_into",
    "pretraining_moments",
    "resolve_backbone_bands",
    "torchgeo_weights",
    "weights_settings",
]

#: How ``model.weights`` names TorchGeo weights: ``torchgeo:ViTSmall16_Weights.SENTINEL2_ALL_DINO``.
PREFIX = "torchgeo:"

#: TorchGeo weights that do not load into a timm ViT, and why (shown by ``rs-metapeft backbones``).
NOT_SUPPORTED: dict[tuple[str, ...], str] = {
    ("DOFABase16_Weights", "DOFALarge16_Weights"): (
        "DOFA is not a timm VisionTransformer: its patch embedding is generated in every forward "
        "pass from the input's wavelengths (the job rs_metapeft's stems do), its forward takes "
        "the wavelengths as a second argument, and its fixed sin-cos position embedding is "
        "sized for 224 px and not resampled. Its transformer blocks would take the PEFT "
        "modules, but the stems, other image sizes and the task's timm features (gradient "
        "checkpointing, position-embedding resampling) would need a model of its own"
    ),
    ("ScaleMAELarge16_Weights", "CROMABase_Weights", "CROMALarge_Weights", "Panopticon_Weights",
     "CopernicusFM_Base_Weights"): (
        "a custom architecture (GSD-scaled or cross-modal position embeddings, channel "
        "attention), not a plain timm ViT"
    ),
    ("ResNet18_Weights", "ResNet50_Weights", "ResNet152_Weights", "Swin_T_Weights",
     "Swin_S_Weights", "Swin_B_Weights", "Swin_V2_T_Weights", "Swin_V2_B_Weights"): (
        "not a ViT: the PEFT modules go into ViT blocks (attention and MLP)"
    ),
}

#: Key fragments of an enum member's name: the sensor family of its bands.
_SENSORS = (
    ("SENTINEL2", "sentinel2", "Sentinel-2 L1C TOA"),
    ("SENTINEL1", "sentinel1", "Sentinel-1 GRD"),
    ("LANDSAT_TM_TOA", "landsat7", "Landsat 4-5 TM TOA"),
    ("LANDSAT_ETM_TOA", "landsat7", "Landsat 7 ETM+ TOA"),
    ("LANDSAT_ETM_SR", "landsat7", "Landsat 7 ETM+ SR"),
    ("LANDSAT_OLI_TIRS_TOA", "landsat8", "Landsat 8-9 OLI-TIRS TOA"),
    ("LANDSAT_OLI_SR", "landsat8", "Landsat 8-9 OLI SR"),
)

#: Thermal bands of Landsat weights, which the band registry (reflective bands) does not hold;
#: the stems treat them as optical bands at their centre wavelength. TM's reflective bands are
#: resolved as Landsat 7 ETM+ bands (the same wavelengths within a few nm).
_THERMAL = {
    "landsat7:B6": Band("B6", "landsat7", OPTICAL, 11450.0, 2100.0),
    "landsat7:B6_VCID_1": Band("B6_VCID_1", "landsat7", OPTICAL, 11450.0, 2100.0),
    "landsat7:B6_VCID_2": Band("B6_VCID_2", "landsat7", OPTICAL, 11450.0, 2100.0),
    "landsat8:B10": Band("B10", "landsat8", OPTICAL, 10895.0, 590.0),
    "landsat8:B11": Band("B11", "landsat8", OPTICAL, 12005.0, 1010.0),
}

#: The enums in listing order (smallest first); others TorchGeo adds are appended.
_ORDER = ("ViTSmall16_Weights", "ViTSmall14_DINOv2_Weights", "ViTBase16_Weights",
          "ViTBase14_DINOv2_Weights", "ViTLarge16_Weights", "ViTHuge14_Weights")


@dataclass(frozen=True)
class TorchGeoWeights:
    """One TorchGeo weight enum member that loads into a timm ViT.

    Attributes:
        id: the ``model.weights`` value, e.g. ``torchgeo:ViTSmall16_Weights.SENTINEL2_ALL_DINO``.
        enum: the TorchGeo enum member.
        model: timm model name (``meta["model"]``).
        patch_size: the model's patch size.
        img_size: the input size it was pretrained at.
        bands: the bands as TorchGeo names them (``meta["bands"]``).
        band_names: the same bands as band-registry names (what ``model.backbone_bands`` holds).
        sensor: the sensor and product, for people (``Sentinel-2 L1C TOA``).
        dataset: the pretraining dataset.
        method: the self-supervised method (``dino``, ``mae``, ...), or ``""``.
    """

    id: str
    enum: Any
    model: str
    patch_size: int
    img_size: int
    bands: tuple[str, ...]
    band_names: tuple[str, ...]
    sensor: str
    dataset: str
    method: str

    @property
    def url(self) -> str:
        """Where TorchGeo downloads the file from."""
        return self.enum.url

    @property
    def file_name(self) -> str:
        """The file's name in the torch hub cache (the URL's last part, as torch hub names it)."""
        return os.path.basename(self.enum.url.split("?")[0])

    @property
    def cache_path(self) -> Path:
        """Where torch hub keeps (and first looks for) the file: ``<hub>/checkpoints/<file>``."""
        return Path(torch.hub.get_dir()) / "checkpoints" / self.file_name

    @property
    def normalization(self) -> str:
        """What TorchGeo's transforms for these weights do to the input, in words."""
        mean, std = _normalize_of(self.enum)
        if mean is None:
            return "none (TorchGeo's transforms leave the values as they are)"
        if set(mean) == {0.0} and len(set(std)) == 1:
            return f"divide by {std[0]:g}"
        return "per-band standardisation with SSL4EO-S12 statistics"


def is_torchgeo(weights: str | None) -> bool:
    """Whether ``model.weights`` names TorchGeo weights (``torchgeo:...``)."""
    return isinstance(weights, str) and weights.startswith(PREFIX)


def _error(message: str) -> Exception:
    from .backbone import BackboneWeightsError

    return BackboneWeightsError(message)


def _patch_of(model_name: str) -> int:
    found = re.search(r"patch(\d+)", model_name)
    return int(found.group(1)) if found else 16


def _size_of(meta: dict, model_name: str) -> int:
    if meta.get("img_size"):
        return int(meta["img_size"])
    found = re.search(r"_(\d{3})(?:$|_)", model_name)
    return int(found.group(1)) if found else 224


def _sensor_of(member: str) -> tuple[str, str] | None:
    for fragment, sensor, label in _SENSORS:
        if member.startswith(fragment):
            return sensor, label
    return None


def _registry_name(name: str, sensor: str) -> str:
    """A TorchGeo band name as a band-registry name, sensor-qualified where it must be."""
    key = f"{sensor}:{name}"
    if key in _THERMAL:
        return key
    band = resolve_band(name, sensor)
    # Sentinel names resolve without a prefix (the registry's default sensors); others keep it.
    return band.name if sensor in ("sentinel2", "sentinel1") else band.key


@cache
def _catalog() -> dict[str, TorchGeoWeights]:
    try:
        import timm
        from torchgeo.models import vit
        from torchvision.models._api import WeightsEnum
    except ImportError:  # pragma: no cover - torchgeo is a dependency
        return {}
    enums = {name: cls for name, cls in inspect.getmembers(vit, inspect.isclass)
             if issubclass(cls, WeightsEnum) and cls is not WeightsEnum}
    names = [n for n in _ORDER if n in enums] + sorted(set(enums) - set(_ORDER))
    known = set(timm.list_models())
    catalog = {}
    for enum_name in names:
        for member in enums[enum_name]:
            meta = member.meta
            sensor = _sensor_of(member.name)
            model = meta.get("model")
            if sensor is None or model not in known or "bands" not in meta:
                continue
            try:
                band_names = tuple(_registry_name(b, sensor[0]) for b in meta["bands"])
            except UnknownBandError:
                continue
            weights_id = f"{PREFIX}{enum_name}.{member.name}"
            catalog[weights_id] = TorchGeoWeights(
                id=weights_id, enum=member, model=model, patch_size=_patch_of(model),
                img_size=_size_of(meta, model), bands=tuple(meta["bands"]),
                band_names=band_names, sensor=sensor[1], dataset=str(meta.get("dataset", "")),
                method=str(meta.get("ssl_method", "")),
            )
    return catalog


def list_torchgeo_weights() -> list[TorchGeoWeights]:
    """Every TorchGeo ViT weight enum member that loads into a timm ViT, smallest model first."""
    return list(_catalog().values())


def torchgeo_weights(weights: str) -> TorchGeoWeights:
    """The TorchGeo weights a ``model.weights`` value names (no download).

    Args:
        weights: ``torchgeo:<Enum>.<MEMBER>`` (the ``torchgeo:`` prefix may be left out).

    Raises:
        BackboneWeightsError: no such weights, or weights that do not load into a timm ViT;
            the message lists the valid names.
    """
    name = weights if weights.startswith(PREFIX) else PREFIX + weights
    catalog = _catalog()
    found = catalog.get(name) or next(
        (spec for key, spec in catalog.items() if key.lower() == name.lower()), None)
    if found is not None:
        return found
    enum = name[len(PREFIX):].split(".")[0]
    why = next((f" ({reason})" for enums, reason in NOT_SUPPORTED.items() if enum in enums), "")
    members = [key for key in catalog if key.split(".")[0] == PREFIX + enum]
    valid = (f"members of {enum}: {', '.join(k.split('.', 1)[1] for k in members)}" if members
             else f"enums: {', '.join(sorted({k[len(PREFIX):].split('.')[0] for k in catalog}))}")
    raise _error(
        f"model.weights={weights!r} is not TorchGeo weights that load into a timm ViT{why}. "
        f"Valid {valid}; write torchgeo:<Enum>.<MEMBER> (`rs-metapeft backbones` lists them with "
        "their bands)"
    )


def resolve_backbone_bands(names: list[str] | tuple[str, ...]) -> list[Band]:
    """The bands a backbone takes, by name: band-registry names plus Landsat thermal bands.

    Raises:
        UnknownBandError: a name neither the registry nor the thermal bands know.
    """
    return [_THERMAL[n] if n in _THERMAL else resolve_band(n) for n in names]


def backbone_band_names(bands: list[str] | tuple[str, ...]) -> list[str]:
    """Names of data bands as they resolve (``red`` -> ``B04``), for comparing band sets."""
    return [b.key for b in resolve_backbone_bands(bands)]


def weights_settings(weights: str | None, backbone: str | None, patch_size: int | None,
                     backbone_bands: list[str] | None) -> tuple[str | None, int | None,
                                                               list[str] | None, list[str]]:
    """The backbone name, patch size and backbone bands that go with ``weights``.

    TorchGeo weights fix the architecture: a ``backbone`` of another architecture (the recipe's
    ``vit_tiny_patch16_224``, say) is replaced by the weights' timm model, with a note; the same
    model (also with a timm tag such as ``.augreg_in21k``) stays. ``patch_size: null`` takes the
    weights' patch size; a number stays (timm resamples the patch embedding to it). The backbone
    bands are the weights' bands. Other weights leave everything as given.

    Returns:
        ``(backbone, patch_size, backbone_bands, notes)``; notes say what replaced what.

    Raises:
        BackboneWeightsError: unknown TorchGeo weights, or ``backbone_bands`` given that are not
            the weights' bands.
    """
    if not is_torchgeo(weights):
        return backbone, patch_size, backbone_bands, []
    spec = torchgeo_weights(weights)
    notes = []
    if backbone is None or backbone.split(".")[0] != spec.model:
        if backbone is not None:
            notes.append(f"model.backbone {backbone} was replaced by {spec.model}, the "
                         f"architecture of the weights {spec.id}")
        backbone = spec.model
    if patch_size is None:
        patch_size = spec.patch_size
    if backbone_bands is not None and (backbone_band_names(backbone_bands)
                                       != backbone_band_names(spec.band_names)):
        raise _error(
            f"model.backbone_bands {list(backbone_bands)} are not the bands of {spec.id} "
            f"{list(spec.band_names)}; leave model.backbone_bands out (null) with TorchGeo weights"
        )
    return backbone, patch_size, list(spec.band_names), notes


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def _missing(spec: TorchGeoWeights, why: str) -> Exception:
    return _error(
        f"TorchGeo weights {spec.id} are not in the torch hub cache: {spec.cache_path} does not "
        f"exist ({why}). Download {spec.url} where the internet is reachable and put the file "
        f"in the cache folder {spec.cache_path.parent} under the name {spec.file_name} (TORCH_HOME "
        "moves the cache), or set model.weights=null to start from random initialisation"
    )


def state_dict(spec: TorchGeoWeights) -> dict[str, torch.Tensor]:
    """The weights' state dict through TorchGeo's ``get_state_dict`` (cache first, then download).

    Raises:
        BackboneWeightsError: not cached and not downloadable (offline, or the download
            failed), or an unreadable cached file; the message names the file and cache folder.
    """
    cached = spec.cache_path.is_file()
    if not cached and _offline():
        raise _missing(spec, "HF_HUB_OFFLINE=1 is set, so nothing is downloaded")
    try:
        state = spec.enum.get_state_dict(progress=True, check_hash=True, weights_only=True,
                                         map_location="cpu")
    except Exception as err:  # download errors come in many types; all mean the same to a user
        if not spec.cache_path.is_file():
            raise _missing(spec, f"the download failed: {' '.join(str(err).split())}") from err
        raise _error(
            f"cannot read TorchGeo weights {spec.id} from {spec.cache_path}: {err}. Delete the "
            "file to download it again, or put an intact copy there"
        ) from err
    if not isinstance(state, dict):
        raise _error(f"{spec.cache_path} holds a {type(state).__name__}, not a state dict")
    return state


#: Keys a TorchGeo ViT file may have or lack (TorchGeo's own allowance, plus pooling norms).
_OPTIONAL_KEYS = {"norm.weight", "norm.bias", "head.weight", "head.bias", "fc_norm.weight",
                  "fc_norm.bias"}


def load_into(model: nn.Module, weights: str) -> None:
    """Load TorchGeo weights into a timm ViT of their architecture, in place.

    Position embeddings are resampled to the model's image size and the patch embedding to its
    patch size (timm's ``checkpoint_filter_fn``). A model with fewer blocks than the weights
    (``backbone_kwargs: {depth: N}``) takes their first N blocks.

    Raises:
        BackboneWeightsError: see :func:`state_dict`; or tensors that do not fit the model.
    """
    from timm.models.vision_transformer import checkpoint_filter_fn

    spec = torchgeo_weights(weights)
    state = state_dict(spec)
    depth = len(model.blocks)
    state = {k: v for k, v in state.items()
             if not (k.startswith("blocks.") and int(k.split(".")[1]) >= depth)}
    try:
        state = checkpoint_filter_fn(state, model)
        missing, unexpected = model.load_state_dict(state, strict=False)
    except (RuntimeError, KeyError, ValueError) as err:
        raise _error(f"TorchGeo weights {spec.id} ({spec.cache_path}) do not fit timm model "
                     f"{spec.model}: {' '.join(str(err).split())[:500]}") from err
    if (set(missing) | set(unexpected)) - _OPTIONAL_KEYS:
        raise _error(
            f"TorchGeo weights {spec.id} ({spec.cache_path}) do not fit timm model {spec.model}: "
            f"missing {sorted(set(missing) - _OPTIONAL_KEYS)[:5]}, unexpected "
            f"{sorted(set(unexpected) - _OPTIONAL_KEYS)[:5]}"
        )


def _normalize_of(member) -> tuple[list[float] | None, list[float] | None]:
    """Mean and std of the ``Normalize`` in a weights' transforms (``None``: there is none)."""
    from torchvision.transforms import v2

    transforms = member.transforms
    modules = list(transforms) if isinstance(transforms, nn.Sequential) else [transforms]
    for t in modules:
        if isinstance(t, v2.Normalize):
            return [float(m) for m in t.mean], [float(s) for s in t.std]
    return None, None


def _raw_statistics(spec: TorchGeoWeights) -> tuple[list[float], list[float]] | None:
    """Per-band mean and std of the raw pretraining inputs, where TorchGeo records them.

    SSL4EO-S12 (Sentinel-2 L1C DN, Sentinel-1 GRD dB): TorchGeo's SSL4EO-S12 statistics. The
    Sentinel-2 CLOSP weights (CrisisLandMark, also reflectance x 10000, divided by 10000) take
    them as an approximation. Not known, so ``None``: SSL4EO-L (Landsat; TorchGeo records no
    statistics) and Sentinel-1 CLOSP (no normalisation in TorchGeo's transforms, units not
    recorded).
    """
    try:
        from torchgeo.models.resnet import _mean_s1, _mean_s2, _std_s1, _std_s2
    except ImportError:  # pragma: no cover - private names of TorchGeo 0.10
        return None
    if spec.sensor.startswith("Sentinel-2") and len(spec.bands) == len(_mean_s2):
        return list(_mean_s2), list(_std_s2)
    if (spec.sensor.startswith("Sentinel-1") and len(spec.bands) == len(_mean_s1)
            and _normalize_of(spec.enum)[0] is not None):
        return list(_mean_s1), list(_std_s1)
    return None


def pretraining_moments(weights: str | None) -> tuple[list[float], list[float]] | None:
    """Per-band mean and std of the inputs the weights saw in pretraining, after their transforms.

    For each of the weights' bands: ``(raw mean - m) / s`` and ``raw std / s``, with ``m``, ``s``
    the ``Normalize`` of the enum's transforms (none: 0 and 1) and the raw statistics of the
    pretraining data (:func:`_raw_statistics`). ``None`` where they are not known (Landsat, and
    anything not TorchGeo's).
    """
    if not is_torchgeo(weights):
        return None
    spec = torchgeo_weights(weights)
    raw = _raw_statistics(spec)
    if raw is None:
        return None
    mean, std = _normalize_of(spec.enum)
    n = len(spec.bands)
    mean = [0.0] * n if mean is None else (mean * n if len(mean) == 1 else mean)
    std = [1.0] * n if std is None else (std * n if len(std) == 1 else std)
    return ([(rm - m) / s for rm, m, s in zip(raw[0], mean, std, strict=True)],
            [rs / s for rs, s in zip(raw[1], std, strict=True)])
