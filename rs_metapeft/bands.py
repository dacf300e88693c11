"""Band registry: names, aliases, wavelengths and modalities of remote-sensing bands.

Pure data and lookups; imports nothing from the rest of the package. Recipes name bands, the
registry resolves them (``"red"``, ``"B4"`` and ``"B04"`` are the same Sentinel-2 band), and the
spectral stems use the wavelengths to map bands onto an RGB-pretrained backbone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "Band",
    "BandMismatchError",
    "BandSet",
    "OPTICAL",
    "SAR",
    "RGB_WAVELENGTHS_NM",
    "SENSORS",
    "SENSOR_ALIASES",
    "UnknownBandError",
    "check_compatible",
    "describe_difference",
    "resolve_band",
    "resolve_bands",
]

OPTICAL = "optical"
SAR = "sar"

#: Centre wavelengths (nm) of the red, green and blue channels an RGB-pretrained model expects.
RGB_WAVELENGTHS_NM = (665.0, 560.0, 490.0)


class UnknownBandError(ValueError):
    """A band name that the registry does not know."""


class BandMismatchError(ValueError):
    """Data whose bands are not the ones a model, checkpoint or band statistics were made for."""


@dataclass(frozen=True)
class Band:
    """One spectral band or SAR polarisation.

    Attributes:
        name: canonical name, unique within its sensor (e.g. ``"B04"``, ``"VV"``).
        sensor: sensor family (e.g. ``"sentinel2"``, ``"sentinel1"``).
        modality: ``"optical"`` or ``"sar"``.
        wavelength_nm: centre wavelength for optical bands, ``None`` for SAR.
        bandwidth_nm: full width for optical bands, ``None`` for SAR.
        aliases: other names that resolve to this band.
    """

    name: str
    sensor: str
    modality: str
    wavelength_nm: float | None = None
    bandwidth_nm: float | None = None
    aliases: tuple[str, ...] = field(default_factory=tuple)

    @property
    def key(self) -> str:
        """Sensor-qualified name, e.g. ``"sentinel2:B04"``."""
        return f"{self.sensor}:{self.name}"


def _optical(sensor: str, rows: list[tuple]) -> tuple[Band, ...]:
    return tuple(Band(n, sensor, OPTICAL, wl, bw, tuple(al)) for n, wl, bw, al in rows)


SENTINEL2 = _optical(
    "sentinel2",
    [
        ("B01", 442.7, 21.0, ["B1", "coastal"]),
        ("B02", 492.4, 66.0, ["B2", "blue"]),
        ("B03", 559.8, 36.0, ["B3", "green"]),
        ("B04", 664.6, 31.0, ["B4", "red"]),
        ("B05", 704.1, 15.0, ["B5", "rededge1"]),
        ("B06", 740.5, 15.0, ["B6", "rededge2"]),
        ("B07", 782.8, 20.0, ["B7", "rededge3"]),
        ("B08", 832.8, 106.0, ["B8", "nir"]),
        ("B8A", 864.7, 21.0, ["B08A", "nir08", "rededge4"]),
        ("B09", 945.1, 20.0, ["B9", "water_vapour"]),
        ("B10", 1373.5, 31.0, ["cirrus"]),
        ("B11", 1613.7, 91.0, ["swir16", "swir1"]),
        ("B12", 2202.4, 175.0, ["swir22", "swir2"]),
    ],
)

LANDSAT8 = _optical(
    "landsat8",
    [
        ("SR_B1", 443.0, 16.0, ["B1", "coastal"]),
        ("SR_B2", 482.0, 60.0, ["B2", "blue"]),
        ("SR_B3", 561.0, 57.0, ["B3", "green"]),
        ("SR_B4", 655.0, 37.0, ["B4", "red"]),
        ("SR_B5", 865.0, 28.0, ["B5", "nir"]),
        ("SR_B6", 1609.0, 85.0, ["B6", "swir1"]),
        ("SR_B7", 2201.0, 187.0, ["B7", "swir2"]),
        ("B8", 590.0, 172.0, ["pan"]),
        ("B9", 1373.0, 20.0, ["cirrus"]),
    ],
)

LANDSAT7 = _optical(
    "landsat7",
    [
        ("SR_B1", 483.0, 65.0, ["B1", "blue"]),
        ("SR_B2", 560.0, 80.0, ["B2", "green"]),
        ("SR_B3", 662.0, 60.0, ["B3", "red"]),
        ("SR_B4", 835.0, 130.0, ["B4", "nir"]),
        ("SR_B5", 1648.0, 200.0, ["B5", "swir1"]),
        ("SR_B7", 2206.0, 260.0, ["B7", "swir2"]),
        ("B8", 710.0, 380.0, ["pan"]),
    ],
)

RGBN = _optical(
    "rgbn",
    [
        ("R", 650.0, 80.0, ["red"]),
        ("G", 555.0, 80.0, ["green"]),
        ("B", 480.0, 80.0, ["blue"]),
        ("N", 830.0, 100.0, ["nir"]),
    ],
)

RGB = _optical(
    "rgb",
    [
        ("R", 650.0, 100.0, ["red"]),
        ("G", 550.0, 100.0, ["green"]),
        ("B", 470.0, 100.0, ["blue"]),
    ],
)

SENTINEL1 = tuple(
    Band(n, "sentinel1", SAR, None, None, (n.lower(),)) for n in ("VV", "VH", "HH", "HV")
)

#: Every sensor the registry knows, by name.
SENSORS: dict[str, tuple[Band, ...]] = {
    "sentinel2": SENTINEL2,
    "landsat8": LANDSAT8,
    "landsat7": LANDSAT7,
    "rgbn": RGBN,
    "rgb": RGB,
    "sentinel1": SENTINEL1,
}

#: Other names of sensors (Landsat 9's OLI-2 has Landsat 8's bands; NAIP and PlanetScope 4-band
#: products are RGBN).
SENSOR_ALIASES: dict[str, str] = {
    "s2": "sentinel2", "s1": "sentinel1", "landsat9": "landsat8", "oli": "landsat8",
    "etm+": "landsat7", "etm": "landsat7", "naip": "rgbn", "planetscope": "rgbn",
}

#: Sensor tried first for an unqualified name ("B04", "VV", "red").
DEFAULT_SENSOR_ORDER = ("sentinel2", "sentinel1", "rgb", "rgbn", "landsat8", "landsat7")


def _lookup(sensor: str, name: str) -> Band | None:
    wanted = name.strip().lower()
    for band in SENSORS[sensor]:
        if band.name.lower() == wanted or wanted in (a.lower() for a in band.aliases):
            return band
    return None


def resolve_band(name: str, sensor: str | None = None) -> Band:
    """Resolve a band name or alias to a registered :class:`Band`.

    Args:
        name: band name, alias, or ``"sensor:name"`` (e.g. ``"landsat8:red"``).
        sensor: sensor to look in; by default the name's own prefix, else Sentinel-2, then
            Sentinel-1, RGB, RGBN and Landsat.

    Returns:
        The registered band.

    Raises:
        UnknownBandError: the name is not registered; the message lists valid names.

    Example:
        >>> resolve_band("red").name
        'B04'
        >>> resolve_band("landsat8:red").wavelength_nm
        655.0
    """
    if ":" in name:
        sensor, name = name.split(":", 1)
    if sensor is not None:
        sensor = SENSOR_ALIASES.get(sensor.strip().lower(), sensor.strip().lower())
        if sensor not in SENSORS:
            raise UnknownBandError(
                f"unknown sensor {sensor!r} for band {name!r}; known sensors: {sorted(SENSORS)}"
            )
        order: tuple[str, ...] = (sensor,)
    else:
        order = DEFAULT_SENSOR_ORDER
    for candidate in order:
        band = _lookup(candidate, name)
        if band is not None:
            return band
    valid = ", ".join(b.name for s in order for b in SENSORS[s])
    raise UnknownBandError(
        f"unknown band {name!r}: it is not in the band registry for {', '.join(order)}. "
        f"Valid names: {valid} (aliases such as 'red', 'nir', 'vv' work too; "
        "use 'sensor:name' for another sensor)."
    )


def resolve_bands(names: list[str] | tuple[str, ...], sensor: str | None = None) -> list[Band]:
    """Resolve several band names; duplicates are an error.

    Args:
        names: band names or aliases, in the order of the data's channels.
        sensor: optional sensor to resolve all names in.

    Returns:
        Bands in the same order.

    Raises:
        UnknownBandError: a name is unknown or listed twice.
    """
    if not names:
        raise UnknownBandError("no bands given: name the data's bands, e.g. bands: [B04, B03, B02]")
    bands = [resolve_band(n, sensor) for n in names]
    keys = [b.key for b in bands]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise UnknownBandError(f"bands listed more than once: {dupes}")
    return bands


@dataclass(frozen=True)
class BandSet:
    """An ordered set of bands, as the data's channels come.

    Args:
        names: the band names as given in a recipe (kept for messages and manifests).
    """

    names: tuple[str, ...]

    @property
    def bands(self) -> list[Band]:
        """The resolved bands."""
        return resolve_bands(list(self.names))

    @property
    def modality(self) -> str:
        """``"optical"``, ``"sar"`` or ``"mixed"``."""
        kinds = {b.modality for b in self.bands}
        return kinds.pop() if len(kinds) == 1 else "mixed"

    def __len__(self) -> int:
        return len(self.names)


def _band_key(name: str) -> str:
    # Registered names compare by band ("red" is "B04"); unregistered ones (free-text GeoTIFF
    # band descriptions) as written.
    try:
        return resolve_band(name).key
    except UnknownBandError:
        return name


def describe_difference(what: str, expected: Sequence[str], got: Sequence[str],
                        where: str = "the model", data: str = "the data",
                        key: Callable[[str], str] = str) -> str:
    """Say how two name lists differ: what is missing, what is extra, or that the order differs.

    Args:
        what: what the names are (``"bands"``, ``"classes"``).
        expected: the names ``where`` was made for.
        got: the names ``data`` has.
        where: what ``expected`` belongs to.
        data: what ``got`` belongs to.
        key: names with the same key are the same (bands: :func:`resolve_band`'s key).

    Returns:
        One line naming both lists and their difference.
    """
    expected, got = list(expected), list(got)
    theirs, ours = {key(n) for n in got}, {key(n) for n in expected}
    missing = [n for n in expected if key(n) not in theirs]
    extra = [n for n in got if key(n) not in ours]
    parts = [f"{where} was made for {what} {expected} but {data} has {what} {got}"]
    if missing:
        parts.append(f"missing from {data}: {missing}")
    if extra:
        parts.append(f"not known to {where}: {extra}")
    if not missing and not extra:
        parts.append("same names in a different order")
    return "; ".join(parts)


def check_compatible(expected: Sequence[str], got: Sequence[str] | int,
                     where: str = "the model", data: str = "the data",
                     fix: str | None = None) -> None:
    """Refuse data whose bands are not the bands ``where`` was made for: the one band check.

    Names are compared band by band after the registry resolves aliases (``red``, ``B4`` and
    ``B04`` are one band); order matters, as channels are read by position. Data that does not
    name its bands (a GeoTIFF without band descriptions, a tensor) is checked by its count.

    Args:
        expected: bands of the model, checkpoint or statistics, in channel order.
        got: the data's band names in channel order, or only its channel count.
        where: what ``expected`` belongs to, for the message (``"the checkpoint"``).
        data: what ``got`` belongs to, for the message (a file name, ``"the data"``).
        fix: what to do about it; by default, give data with these bands in this order.

    Raises:
        BandMismatchError: the bands differ; the message names both lists and what to do.

    Example:
        >>> check_compatible(["B04", "B03", "B02"], ["red", "green", "blue"])
        >>> check_compatible(["VV", "VH"], ["VH", "VV"])
        Traceback (most recent call last):
        ...
        rs_metapeft.bands.BandMismatchError: the model was made for bands ['VV', 'VH'] but ...
    """
    expected = list(expected)
    fix = fix or "give data with exactly these bands in this order (set data.bands to match)"
    if isinstance(got, int):
        if got != len(expected):
            raise BandMismatchError(
                f"{data} has {got} bands but {where} was made for {len(expected)} "
                f"({', '.join(expected)}); {fix}"
            )
        return
    if [_band_key(n) for n in got] != [_band_key(n) for n in expected]:
        raise BandMismatchError(
            f"{describe_difference('bands', expected, got, where, data, _band_key)}; {fix}"
        )
