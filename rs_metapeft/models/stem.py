"""Spectral stems: map any band set onto an RGB-pretrained ViT.

Two kinds of stem exist. *Pixel* stems (``rgb_select``, ``band_mix``) turn the C input bands into
the three channels the pretrained patch embedding expects. *Patch* stems (``patch_expand``,
``wavelength_hyper``) replace the patch-embedding projection itself with one that takes C bands;
:class:`~rs_metapeft.models.classifier.SpectralViTClassifier` installs them in the backbone.
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
    "rgb_band_indices",
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

    The statistics are buffers, so they travel inside every checkpoint with the model.

    Args:
        num_bands: number of input bands.
    """

    def __init__(self, num_bands: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(num_bands))
        self.register_buffer("std", torch.ones(num_bands))
        self.register_buffer("fitted", torch.tensor(False))

    def set_statistics(self, mean: list[float], std: list[float]) -> None:
        """Store per-band mean and std (from the training split)."""
        if len(mean) != self.mean.numel() or len(std) != self.std.numel():
            raise ValueError(
                f"statistics for {len(mean)} bands given to a model of {self.mean.numel()} bands"
            )
        self.mean.copy_(torch.as_tensor(mean, dtype=self.mean.dtype))
        self.std.copy_(torch.as_tensor(std, dtype=self.std.dtype))
        self.fitted.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardise each band."""
        return normalize(x, self.mean, self.std)


class RGBSelectStem(nn.Module):
    """Baseline: feed R, G, B from the bands nearest to them (no parameters).

    Args:
        bands: input band names.
    """

    def __init__(self, bands: list[str]) -> None:
        super().__init__()
        self.bands = list(bands)
        self.register_buffer("index", torch.tensor(rgb_band_indices(self.bands)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pick three bands."""
        return x.index_select(1, self.index)


class BandMixStem(nn.Module):
    """A learned 1x1 band mixing C -> 3 in front of the pretrained patch embedding.

    Initialised from band wavelengths: R, G and B each copy the nearest input band (weight 1, all
    others 0), so at initialisation the pretrained model sees the RGB bands of the input, and
    training learns how the remaining bands (NIR, SWIR, red edge, SAR) should contribute.

    Args:
        bands: input band names.
    """

    def __init__(self, bands: list[str]) -> None:
        super().__init__()
        self.bands = list(bands)
        self.mix = nn.Conv2d(len(bands), 3, kernel_size=1)
        with torch.no_grad():
            self.mix.weight.zero_()
            self.mix.bias.zero_()
            for out_ch, in_ch in enumerate(rgb_band_indices(self.bands)):
                self.mix.weight[out_ch, in_ch] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mix normalised bands into three channels."""
        return self.mix(x)


def _check_rgb_projection(proj: nn.Module) -> nn.Conv2d:
    if not isinstance(proj, nn.Conv2d) or proj.in_channels != 3:
        raise TypeError(
            "patch stems need the backbone's RGB patch-embedding convolution (3 input channels), "
            f"got {type(proj).__name__}"
            + (f" with {proj.in_channels} channels" if isinstance(proj, nn.Conv2d) else "")
        )
    return proj


class PatchExpandStem(nn.Module):
    """A patch embedding with one kernel per band, initialised band-aware, all trainable.

    The kernel of band c is ``gain[c] * kernel[c]``. Directions: a visible band starts from the
    pretrained kernel of the nearest of R, G, B; any other band from the mean of the three RGB
    kernels scaled by 3/C (so that C such bands add up to one RGB kernel). Gains start at 1 for
    the bands that :func:`rgb_band_indices` picks for R, G, B (whose directions are those kernels,
    summed where one band feeds several channels) and 0 for all others, so at initialisation the
    stem is exactly the pretrained patch embedding applied to the input's RGB bands; training
    then grows the other bands in.

    Args:
        bands: input band names.
        proj: the pretrained RGB patch-embedding convolution (its weights are copied).
    """

    def __init__(self, bands: list[str], proj: nn.Conv2d) -> None:
        super().__init__()
        proj = _check_rgb_projection(proj)
        self.bands = list(bands)
        self.stride, self.padding = proj.stride, proj.padding
        resolved = resolve_bands(self.bands)
        rgb = proj.weight.detach()  # (D, 3, p, p), channels R, G, B
        mean = rgb.mean(dim=1) * 3.0 / len(resolved)
        kernels = []
        for band in resolved:
            if band.modality == OPTICAL and _VISIBLE_NM[0] <= band.wavelength_nm <= _VISIBLE_NM[1]:
                nearest = min(range(3),
                              key=lambda j: abs(band.wavelength_nm - RGB_WAVELENGTHS_NM[j]))
                kernels.append(rgb[:, nearest])
            else:
                kernels.append(mean)
        kernel = torch.stack(kernels, dim=1).clone()
        gain = torch.zeros(len(resolved))
        picked = _rgb_indices(resolved)
        for c in set(picked):
            kernel[:, c] = sum(rgb[:, j] for j in range(3) if picked[j] == c)
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
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)


def _fourier_features(wavelength_nm: torch.Tensor, dim: int) -> torch.Tensor:
    """Sin/cos features of log-wavelength (optical bands span 0.4-2.3 um over ~1.7 octaves)."""
    x = torch.log2(wavelength_nm / 1000.0).unsqueeze(-1)
    freqs = (2.0 ** torch.arange(dim // 2, dtype=x.dtype, device=x.device)) * math.pi
    return torch.cat([torch.sin(x * freqs), torch.cos(x * freqs)], dim=-1)


class WavelengthHyperStem(nn.Module):
    """A hypernetwork that generates the patch-embedding kernel of each band from what it is.

    Each band gets an embedding: Fourier features of its centre wavelength (optical) or a learned
    vector per polarisation (SAR: VV, VH, HH, HV). A small MLP maps the embedding to mixing
    coefficients over a kernel bank (the pretrained R, G, B kernels plus ``extra_kernels`` learned
    ones); the band's kernel is that mixture. Coefficients add a fixed wavelength prior to the
    MLP's output (whose last layer starts at zero): a Gaussian in wavelength around R, G and B
    (SAR: the first polarisation feeds R and B, the second G), so training starts from a sensible
    RGB-like embedding. Because kernels come from band descriptions, not from band slots, the
    same stem embeds a band set it was not trained on (see :meth:`set_bands`).

    Args:
        bands: input band names.
        proj: the pretrained RGB patch-embedding convolution (its weights seed the bank).
        embed_dim: width of the band embedding.
        hidden: hidden width of the MLP.
        extra_kernels: learned kernels in the bank beside R, G, B.
        sigma_nm: width of the wavelength prior.
    """

    POLARISATIONS = ("VV", "VH", "HH", "HV")

    def __init__(self, bands: list[str], proj: nn.Conv2d, embed_dim: int = 16, hidden: int = 64,
                 extra_kernels: int = 8, sigma_nm: float = 25.0) -> None:
        super().__init__()
        proj = _check_rgb_projection(proj)
        self.stride, self.padding = proj.stride, proj.padding
        self.embed_dim, self.sigma_nm = embed_dim, sigma_nm
        rgb = proj.weight.detach().transpose(0, 1)  # (3, D, p, p)
        extra = torch.randn(extra_kernels, *rgb.shape[1:]) * rgb.std() * 0.1
        self.bank = nn.Parameter(torch.cat([rgb, extra]).clone())
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
        coef = coef + F.pad(self.prior.to(coef), (0, coef.shape[1] - 3))
        return torch.einsum("ck,kdij->dcij", coef, self.bank)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Patch embedding of an image whose channels are the current bands."""
        check_compatible(self.bands, x.shape[1], where="the stem", data="the input",
                         fix="call set_bands() with the input's bands")
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)


def build_stem(kind: StemKind, bands: list[str], proj: nn.Module | None = None) -> nn.Module:
    """A spectral stem by name.

    Args:
        kind: one of :data:`STEMS`.
        bands: input band names.
        proj: the backbone's pretrained patch-embedding convolution (patch stems only).

    Raises:
        ValueError: unknown kind.
    """
    check_choice(kind, StemKind, "model.stem")
    if kind in PIXEL_STEMS:
        return RGBSelectStem(bands) if kind == "rgb_select" else BandMixStem(bands)
    return (PatchExpandStem if kind == "patch_expand" else WavelengthHyperStem)(bands, proj)
