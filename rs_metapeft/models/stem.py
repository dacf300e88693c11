"""Spectral stems: map any band set onto the bands a pretrained ViT takes.

Two kinds of stem exist. *Pixel* stems (``rgb_select``, ``band_mix``) turn the C input bands into
the K channels the pretrained patch embedding expects. *Patch* stems (``patch_expand``,
``wavelength_hyper``) replace the patch-embedding projection itself with one that takes C bands;
:class:`~rs_metapeft.models.classifier.SpectralViTClassifier` installs them in the backbone.

The K *target* bands are R, G, B for an RGB-pretrained backbone (``target=None``, the default),
or the bands a multispectral or SAR backbone was pretrained on (e.g. TorchGeo's Sentinel-2
13-band weights), given as registered :class:`~rs_metapeft.bands.Band` objects. Each target band
is fed by the input band with the same registry key (``B8a`` is ``B8A``), else by the nearest
input band in wavelength (optical) or polarisation (SAR), see :func:`target_band_indices`; so
data with the weights' own bands pass straight through (reordered), and every stem starts as
the pretrained patch embedding of those bands.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from kornia.enhance import normalize
from torch import nn
from torch.nn import functional as F

from ..bands import OPTICAL, RGB_WAVELENGTHS_NM, SAR, Band, check_compatible, resolve_bands
from ..choices import check_choice
from .patchify import band_mix, patch_conv

__all__ = [
    "PATCH_STEMS",
    "PIXEL_STEMS",
    "STEMS",
    "BandMixStem",
    "BandNormalizer",
    "PatchExpandStem",
    "RGBSelectStem",
    "StemKind",
    "WavelengthHyperStem",
    "build_stem",
    "nearest_target",
    "rgb_band_indices",
    "target_band_indices",
]

#: A spectral stem's name (``model.stem``).
StemKind = Literal["rgb_select", "band_mix", "patch_expand", "wavelength_hyper"]
STEMS = get_args(StemKind)
#: Stems applied to the image before the (unchanged) pretrained patch embedding.
PIXEL_STEMS = ("rgb_select", "band_mix")
#: Stems that replace the patch embedding's projection.
PATCH_STEMS = ("patch_expand", "wavelength_hyper")

#: Visible range (nm): bands inside it start from the nearest RGB kernel in ``patch_expand``.
_VISIBLE_NM = (380.0, 720.0)


def rgb_band_indices(band_names: list[str]) -> list[int]:
    """For each of R, G, B, the index of the input band that should feed it.

    Optical bands: the band whose centre wavelength is nearest to the channel's. SAR-only inputs
    have no wavelengths: the first polarisation (e.g. VV) feeds R, the second (e.g. VH) feeds G,
    and B takes the first again (the stem's mixing weights then learn a better blend).

    Raises:
        UnknownBandError: a band is not in the registry.
    """
    return _rgb_indices(resolve_bands(band_names))


def target_band_indices(band_names: list[str], target: list[Band] | None = None) -> list[int]:
    """For each target band (default R, G, B), the index of the input band that should feed it.

    With ``target=None`` this is :func:`rgb_band_indices`. Otherwise each target band takes the
    input band with the same registry key (the same band: ``B8a``, ``B8A`` and ``nir08`` are one),
    else the nearest optical input band in wavelength (an optical target), else a SAR input band
    of the same polarisation, then of the same kind (co-polarised VV/HH, cross-polarised VH/HV),
    else the input bands in turn.

    Raises:
        UnknownBandError: an input band is not in the registry.
    """
    return _target_indices(resolve_bands(band_names), target)


_CO_POL, _CROSS_POL = ("VV", "HH"), ("VH", "HV")


def _target_indices(bands: list[Band], target: list[Band] | None) -> list[int]:
    if target is None:
        return _rgb_indices(bands)
    keys = {b.key: i for i, b in enumerate(bands)}
    optical = [i for i, b in enumerate(bands) if b.modality == OPTICAL]
    sar = [i for i, b in enumerate(bands) if b.modality == SAR]
    picked = []
    for j, t in enumerate(target):
        if t.key in keys:
            picked.append(keys[t.key])
        elif t.modality == OPTICAL and optical:
            picked.append(min(optical, key=lambda i: abs(bands[i].wavelength_nm - t.wavelength_nm)))
        elif t.modality == SAR and sar:
            same = [i for i in sar if bands[i].name == t.name]
            kind = _CO_POL if t.name in _CO_POL else _CROSS_POL
            alike = [i for i in sar if bands[i].name in kind]
            picked.append((same or alike or [sar[j % len(sar)]])[0])
        else:
            picked.append(j % len(bands))
    return picked


def _rgb_indices(bands: list[Band]) -> list[int]:
    optical = [i for i, b in enumerate(bands) if b.modality == OPTICAL]
    if optical:
        return [
            min(optical, key=lambda i: abs(bands[i].wavelength_nm - target))
            for target in RGB_WAVELENGTHS_NM
        ]
    order = list(range(len(bands)))
    return [order[0], order[min(1, len(order) - 1)], order[0]]


class BandNormalizer(nn.Module):
    """Per-band standardisation with the training split's statistics, on device (kornia).

    Each band is standardised with the training split's mean and std, then given the target
    mean and std (by default 0 and 1: plain standardisation). With pretrained weights whose
    pretraining inputs had other per-band statistics (TorchGeo's Sentinel-2 weights saw
    reflectance / 10000, mean about 0.1-0.26 and std about 0.05-0.13 per band) the targets are
    those, so the backbone sees inputs distributed as in its pretraining, whatever the units of
    the data. Statistics and targets are buffers, so they travel inside every checkpoint.

    Args:
        num_bands: number of input bands.
    """

    def __init__(self, num_bands: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(num_bands))
        self.register_buffer("std", torch.ones(num_bands))
        self.register_buffer("fitted", torch.tensor(False))
        self.register_buffer("target_mean", torch.zeros(num_bands))
        self.register_buffer("target_std", torch.ones(num_bands))

    def _store(self, what: str, mean: list[float], std: list[float],
               names: tuple[str, str]) -> None:
        if len(mean) != self.mean.numel() or len(std) != self.std.numel():
            raise ValueError(
                f"{what} for {len(mean)} bands given to a model of {self.mean.numel()} bands"
            )
        for name, values in zip(names, (mean, std), strict=True):
            getattr(self, name).copy_(torch.as_tensor(values, dtype=self.mean.dtype))

    def set_statistics(self, mean: list[float], std: list[float]) -> None:
        """Store per-band mean and std (from the training split)."""
        self._store("statistics", mean, std, ("mean", "std"))
        self.fitted.fill_(True)

    def set_targets(self, mean: list[float], std: list[float]) -> None:
        """Store the per-band mean and std the standardised bands are given (the backbone's)."""
        self._store("targets", mean, std, ("target_mean", "target_std"))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # Checkpoints older than the targets hold none: keep the defaults (plain standardisation).
        for name in ("target_mean", "target_std"):
            state_dict.setdefault(prefix + name, getattr(self, name).detach().clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardise each band, then give it the target mean and std."""
        scale = self.std / self.target_std
        return normalize(x, self.mean - self.target_mean * scale, scale)


class RGBSelectStem(nn.Module):
    """Baseline: feed each target band (R, G, B) from the input band nearest to it (no parameters).

    Args:
        bands: input band names.
        target: the backbone's bands (``None``: R, G, B); see :func:`target_band_indices`.
    """

    def __init__(self, bands: list[str], target: list[Band] | None = None) -> None:
        super().__init__()
        self.bands = list(bands)
        self.register_buffer("index", torch.tensor(target_band_indices(self.bands, target)),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pick three bands."""
        return x.index_select(1, self.index)


class BandMixStem(nn.Module):
    """A learned 1x1 band mixing C -> K (3 for RGB) in front of the pretrained patch embedding.

    Initialised from band wavelengths: each target band (R, G, B) copies its input band (weight
    1, all others 0; see :func:`target_band_indices`), so at initialisation the pretrained model
    sees the input's bands nearest to its own, and training learns how the remaining bands (NIR,
    SWIR, red edge, SAR) should contribute. Where the input has the backbone's own bands this is
    a pass-through (a reordering).

    Args:
        bands: input band names.
        target: the backbone's bands (``None``: R, G, B).
    """

    def __init__(self, bands: list[str], target: list[Band] | None = None) -> None:
        super().__init__()
        self.bands = list(bands)
        picked = target_band_indices(self.bands, target)
        self.mix = nn.Conv2d(len(bands), len(picked), kernel_size=1)
        with torch.no_grad():
            self.mix.weight.zero_()
            self.mix.bias.zero_()
            for out_ch, in_ch in enumerate(picked):
                self.mix.weight[out_ch, in_ch] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mix normalised bands into three channels."""
        check_compatible(self.bands, x.shape[1], where="the band_mix stem", data="the input")
        return band_mix(x, self.mix.weight, self.mix.bias)


def _check_projection(proj: nn.Module, target: list[Band] | None) -> nn.Conv2d:
    channels = 3 if target is None else len(target)
    if not isinstance(proj, nn.Conv2d) or proj.in_channels != channels:
        what = "RGB" if target is None else f"{channels}-band"
        raise TypeError(
            f"patch stems need the backbone's {what} patch-embedding convolution ({channels} "
            f"input channels), got {type(proj).__name__}"
            + (f" with {proj.in_channels} channels" if isinstance(proj, nn.Conv2d) else "")
        )
    return proj


class PatchExpandStem(nn.Module):
    """A patch embedding with one kernel per band, initialised band-aware, all trainable.

    The kernel of band c is ``gain[c] * kernel[c]``. Directions (RGB backbone): a visible band
    starts from the pretrained kernel of the nearest of R, G, B; any other band from the mean of
    the three RGB kernels scaled by 3/C (so that C such bands add up to one RGB kernel). For a
    backbone pretrained on other bands (``target``), a band starts from the kernel of its own
    band in the weights, else of the nearest one of its modality (wavelength, polarisation),
    else from the scaled mean of the K pretrained kernels. Gains start at 1 for the bands that
    :func:`target_band_indices` picks for the target bands (whose directions are those kernels,
    summed where one band feeds several channels) and 0 for all others, so at initialisation the
    stem is exactly the pretrained patch embedding applied to the input's bands nearest to its
    own; training then grows the other bands in.

    Args:
        bands: input band names.
        proj: the pretrained patch-embedding convolution (its weights are copied).
        target: the backbone's bands (``None``: R, G, B).
    """

    def __init__(self, bands: list[str], proj: nn.Conv2d, target: list[Band] | None = None) -> None:
        super().__init__()
        proj = _check_projection(proj, target)
        self.bands = list(bands)
        self.stride, self.padding = proj.stride, proj.padding
        resolved = resolve_bands(self.bands)
        pretrained = proj.weight.detach()  # (D, K, p, p), channels in target order
        k = pretrained.shape[1]
        mean = pretrained.mean(dim=1) * k / len(resolved)
        kernels = []
        for band in resolved:
            nearest = nearest_target(band, target)
            kernels.append(mean if nearest is None else pretrained[:, nearest])
        kernel = torch.stack(kernels, dim=1).clone()
        gain = torch.zeros(len(resolved))
        picked = _target_indices(resolved, target)
        for c in set(picked):
            kernel[:, c] = sum(pretrained[:, j] for j in range(k) if picked[j] == c)
            gain[c] = 1.0
        self.kernel = nn.Parameter(kernel)
        self.gain = nn.Parameter(gain)
        self.bias = nn.Parameter(proj.bias.detach().clone()) if proj.bias is not None else None

    @property
    def weight(self) -> torch.Tensor:
        """The effective (D, C, p, p) convolution kernel."""
        return self.kernel * self.gain.view(1, -1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Patch embedding of a C-band image."""
        return patch_conv(x, self.weight, self.bias, self.stride, self.padding)


def nearest_target(band: Band, target: list[Band] | None = None) -> int | None:
    """Index of the target band whose pretrained kernel (or statistics) suit ``band`` best.

    RGB (``target=None``): the nearest of R, G, B for a visible band, else ``None``. Otherwise
    the target band with the same registry key, else the nearest optical target in wavelength
    (optical band), else the SAR target of the same polarisation, then of the same kind;
    ``None`` where the target has nothing of the band's modality.
    """
    if target is None:
        if band.modality == OPTICAL and _VISIBLE_NM[0] <= band.wavelength_nm <= _VISIBLE_NM[1]:
            return min(range(3), key=lambda j: abs(band.wavelength_nm - RGB_WAVELENGTHS_NM[j]))
        return None
    for j, t in enumerate(target):
        if t.key == band.key:
            return j
    if band.modality == OPTICAL:
        optical = [j for j, t in enumerate(target) if t.modality == OPTICAL]
        return min(optical, key=lambda j: abs(target[j].wavelength_nm - band.wavelength_nm),
                   default=None)
    sar = [j for j, t in enumerate(target) if t.modality == SAR]
    same = [j for j in sar if target[j].name == band.name]
    kind = _CO_POL if band.name in _CO_POL else _CROSS_POL
    alike = [j for j in sar if target[j].name in kind]
    return (same or alike or [None])[0]


def _fourier_features(wavelength_nm: torch.Tensor, dim: int) -> torch.Tensor:
    """Sin/cos features of log-wavelength (optical bands span 0.4-2.3 um over ~1.7 octaves)."""
    x = torch.log2(wavelength_nm / 1000.0).unsqueeze(-1)
    freqs = (2.0 ** torch.arange(dim // 2, dtype=x.dtype, device=x.device)) * math.pi
    return torch.cat([torch.sin(x * freqs), torch.cos(x * freqs)], dim=-1)


class WavelengthHyperStem(nn.Module):
    """A hypernetwork that generates the patch-embedding kernel of each band from what it is.

    Each band gets an embedding: Fourier features of its centre wavelength (optical) or a learned
    vector per polarisation (SAR: VV, VH, HH, HV). A small MLP maps the embedding to mixing
    coefficients over a kernel bank (the pretrained R, G, B kernels, or the K kernels of a
    backbone pretrained on other bands, plus ``extra_kernels`` learned ones); the band's kernel
    is that mixture. Coefficients add a fixed prior to the MLP's output (whose last layer starts
    at zero): for an RGB backbone a Gaussian in wavelength around R, G and B (SAR: the first
    polarisation feeds R and B, the second G), so training starts from a sensible RGB-like
    embedding; for other target bands each target's kernel goes to the input band that
    :func:`target_band_indices` picks for it, so the stem starts as the pretrained embedding.
    Because kernels come from band descriptions, not from band slots, the same stem embeds a
    band set it was not trained on (see :meth:`set_bands`).

    Args:
        bands: input band names.
        proj: the pretrained patch-embedding convolution (its weights seed the bank).
        embed_dim: width of the band embedding.
        hidden: hidden width of the MLP.
        extra_kernels: learned kernels in the bank beside R, G, B.
        sigma_nm: width of the wavelength prior.
        target: the backbone's bands (``None``: R, G, B).
    """

    POLARISATIONS = ("VV", "VH", "HH", "HV")

    def __init__(self, bands: list[str], proj: nn.Conv2d, embed_dim: int = 16, hidden: int = 64,
                 extra_kernels: int = 8, sigma_nm: float = 25.0,
                 target: list[Band] | None = None) -> None:
        super().__init__()
        proj = _check_projection(proj, target)
        self.stride, self.padding = proj.stride, proj.padding
        self.embed_dim, self.sigma_nm = embed_dim, sigma_nm
        self.target = None if target is None else list(target)
        pretrained = proj.weight.detach().transpose(0, 1)  # (K, D, p, p)
        extra = torch.randn(extra_kernels, *pretrained.shape[1:]) * pretrained.std() * 0.1
        self.bank = nn.Parameter(torch.cat([pretrained, extra]).clone())
        self.bias = nn.Parameter(proj.bias.detach().clone()) if proj.bias is not None else None
        self.sar_embedding = nn.Parameter(torch.randn(len(self.POLARISATIONS), embed_dim) * 0.5)
        self.mlp = nn.Sequential(nn.Linear(embed_dim, hidden), nn.GELU(),
                                 nn.Linear(hidden, self.bank.shape[0]))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)
        self.set_bands(bands)

    def set_bands(self, bands: list[str]) -> None:
        """Point the stem at another band set (any registered optical band or polarisation)."""
        resolved = resolve_bands(list(bands))
        self.bands = list(bands)
        self._resolved = resolved
        if self.target is not None:
            prior = torch.zeros(len(resolved), len(self.target))
            for j, c in enumerate(_target_indices(resolved, self.target)):
                prior[c, j] = 1.0
            self.register_buffer("prior", prior, persistent=False)
            return
        prior = torch.zeros(len(resolved), 3)
        optical = [i for i, b in enumerate(resolved) if b.modality == OPTICAL]
        if optical:
            wl = torch.tensor([resolved[i].wavelength_nm for i in optical])
            w = torch.exp(-((wl[:, None] - torch.tensor(RGB_WAVELENGTHS_NM)) ** 2)
                          / (2 * self.sigma_nm**2))
            prior[optical] = w / w.sum(0, keepdim=True).clamp(min=1.0)
        else:
            for j, c in enumerate(_rgb_indices(resolved)):
                prior[c, j] = 1.0
        self.register_buffer("prior", prior, persistent=False)

    def embeddings(self) -> torch.Tensor:
        """(C, embed_dim) embeddings of the current bands."""
        rows = []
        for band in self._resolved:
            if band.modality == SAR:
                rows.append(self.sar_embedding[self.POLARISATIONS.index(band.polarisation)])
            else:
                wl = torch.tensor(band.wavelength_nm, device=self.bank.device)
                rows.append(_fourier_features(wl, self.embed_dim).to(self.bank.dtype))
        return torch.stack(rows)

    @property
    def weight(self) -> torch.Tensor:
        """The generated (D, C, p, p) convolution kernel of the current bands."""
        coef = self.mlp(self.embeddings())
        prior = self.prior.to(coef)
        coef = coef + F.pad(prior, (0, coef.shape[1] - prior.shape[1]))
        return torch.einsum("ck,kdij->dcij", coef, self.bank)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Patch embedding of an image whose channels are the current bands."""
        check_compatible(self.bands, x.shape[1], where="the stem", data="the input",
                         fix="call set_bands() with the input's bands")
        return patch_conv(x, self.weight, self.bias, self.stride, self.padding)


def build_stem(kind: StemKind, bands: list[str], proj: nn.Module | None = None,
               target: list[Band] | None = None) -> nn.Module:
    """A spectral stem by name.

    Args:
        kind: one of :data:`STEMS`.
        bands: input band names.
        proj: the backbone's pretrained patch-embedding convolution (patch stems only).
        target: the bands the backbone was pretrained on (``None``: R, G, B).

    Raises:
        ValueError: unknown kind.
    """
    check_choice(kind, StemKind, "model.stem")
    if kind in PIXEL_STEMS:
        return (RGBSelectStem if kind == "rgb_select" else BandMixStem)(bands, target)
    if kind == "patch_expand":
        return PatchExpandStem(bands, proj, target)
    return WavelengthHyperStem(bands, proj, target=target)
