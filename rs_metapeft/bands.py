"""Band registry: names, aliases, wavelengths and modalities of remote-sensing bands.

Pure data and lookups; imports nothing from the rest of the package. Recipes name bands, the
registry resolves them (``"red"``, ``"B4"`` and ``"B04"`` are the same Sentinel-2 band), and the
spectral stems use the wavelengths to map bands onto an RGB-pretrained backbone.

A recipe can declare bands of its own sensor (``data.custom_bands``: a name with a centre
wavelength and width, or a SAR polarisation); :func:`declare_bands` adds them to the registry for
this process, and the model records the declarations, so a checkpoint or export declares them
again wherever it is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CUSTOM_SENSOR",
    "POLARISATIONS",
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
    "declare_bands",
    "declared_bands",
    "describe_difference",
    "resolve_band",
    "resolve_bands",
]

OPTICAL = "optical"
SAR = "sar"

#: Centre wavelengths (nm) of the red, green and blue channels an RGB-pretrained model expects.
RGB_WAVELENGTHS_NM = (665.0, 560.0, 490.0)
#: SAR polarisations (transmit, receive).
POLARISATIONS = ("VV", "VH", "HH", "HV")
#: Sensor of a declared band that names none.
CUSTOM_SENSOR = "custom"


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
        bandwidth_nm: full width for optical bands, ``None`` for SAR (or not given).
        aliases: other names that resolve to this band.
        polarisation: for SAR, one of :data:`POLARISATIONS`.
    """

    name: str
    sensor: str
    modality: str
    wavelength_nm: float | None = None
    bandwidth_nm: float | None = None
    aliases: tuple[str, ...] = field(default_factory=tuple)
    polarisation: str | None = None

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

SENTINEL1 = tuple(Band(n, "sentinel1", SAR, None, None, (n.lower(),), n) for n in POLARISATIONS)

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


#: Bands declared by recipes (``data.custom_bands``) in this process, by lower-case name.
_DECLARED: dict[str, Band] = {}

#: The keys a band declaration may have.
_SPEC_KEYS = ("name", "wavelength_nm", "bandwidth_nm", "polarisation", "aliases", "sensor")


def _matches(band: Band, wanted: str) -> bool:
    return band.name.lower() == wanted or wanted in (a.lower() for a in band.aliases)


def _lookup(sensor: str, name: str) -> Band | None:
    wanted = name.strip().lower()
    for band in SENSORS[sensor]:
        if _matches(band, wanted):
            return band
    return None


def _lookup_declared(name: str, sensor: str | None = None) -> Band | None:
    wanted = name.strip().lower()
    for band in _DECLARED.values():
        if (sensor is None or band.sensor == sensor) and _matches(band, wanted):
            return band
    return None


def _number(spec: Mapping[str, Any], key: str, where: str) -> float | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{where}: {key} must be a positive number of nanometres, got {value!r}")
    return float(value)


def _declared_band(spec: Mapping[str, Any], where: str) -> Band:
    """A :class:`Band` from one declaration (see :func:`declare_bands`)."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where} must be a mapping such as {{name: MSS4_green, wavelength_nm: "
                         f"550, bandwidth_nm: 100}}, got {spec!r}")
    unknown = sorted(set(spec) - set(_SPEC_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; a band declaration has "
                         f"{', '.join(_SPEC_KEYS)}")
    name = spec.get("name")
    if not isinstance(name, str) or not name.strip() or ":" in name:
        raise ValueError(f"{where}: name must be the band's name as the data calls it (no ':'), "
                         f"got {name!r}")
    where = f"{where} ({name})"
    wavelength = _number(spec, "wavelength_nm", where)
    bandwidth = _number(spec, "bandwidth_nm", where)
    polarisation = spec.get("polarisation")
    if (wavelength is None) == (polarisation is None):
        raise ValueError(f"{where}: give either wavelength_nm (an optical band, with "
                         "bandwidth_nm) or polarisation (a SAR band: VV, VH, HH or HV)")
    if polarisation is not None:
        if str(polarisation).upper() not in POLARISATIONS or bandwidth is not None:
            raise ValueError(f"{where}: polarisation must be one of {', '.join(POLARISATIONS)} "
                             f"(and a SAR band has no bandwidth_nm), got {polarisation!r}")
        polarisation = str(polarisation).upper()
    aliases = spec.get("aliases") or []
    if isinstance(aliases, str) or not all(isinstance(a, str) and a for a in aliases):
        raise ValueError(f"{where}: aliases must be a list of names, got {aliases!r}")
    sensor = str(spec.get("sensor") or CUSTOM_SENSOR).strip().lower()
    return Band(name.strip(), sensor, OPTICAL if wavelength else SAR, wavelength, bandwidth,
                tuple(aliases), polarisation)


def declare_bands(specs: Sequence[Mapping[str, Any]] | None,
                  where: str = "data.custom_bands") -> list[Band]:
    """Add a recipe's own bands to the registry (for this process).

    Each declaration is a mapping: ``name`` (as the data calls the band, e.g. a GeoTIFF band
    description), and either ``wavelength_nm`` (centre wavelength) with ``bandwidth_nm`` (full
    width; optional) for an optical band, or ``polarisation`` (``VV``, ``VH``, ``HH`` or ``HV``)
    for a SAR band; optionally ``aliases`` and ``sensor`` (default ``custom``). A band declared
    again replaces the earlier declaration of that name; a name of a built-in band is refused
    (it would change what that band means).

    Args:
        specs: the declarations (``None``: nothing to declare).
        where: the recipe field, for messages.

    Returns:
        The declared bands.

    Raises:
        ValueError: a malformed declaration, or a name that is a built-in band's or another
            declared band's; the message names the entry.

    Example:
        >>> mss4 = {"name": "MSS4_green", "wavelength_nm": 550, "bandwidth_nm": 100}
        >>> declare_bands([mss4])[0].key
        'custom:MSS4_green'
        >>> resolve_band("mss4_green").wavelength_nm
        550.0
    """
    entries = [f"{where}[{i}]" for i in range(len(specs or []))]
    bands = [_declared_band(spec, entry) for spec, entry in zip(specs or [], entries, strict=True)]
    seen: dict[str, str] = {}
    for band, entry in zip(bands, entries, strict=True):
        for name in (band.name, *band.aliases):
            builtin = next((b for s in DEFAULT_SENSOR_ORDER if (b := _lookup(s, name))), None)
            if builtin is not None:
                raise ValueError(f"{entry}: {name!r} ({band.name}) is already the registered band "
                                 f"{builtin.key}; give your band another name, or use that band")
            if name.lower() in seen:
                raise ValueError(f"{entry}: {name!r} is declared twice ({seen[name.lower()]} and "
                                 f"{band.name}); give each band its own names")
            seen[name.lower()] = band.name
    for band, entry in zip(bands, entries, strict=True):
        _DECLARED.pop(band.name.lower(), None)
        for name in (band.name, *band.aliases):
            other = _lookup_declared(name)
            if other is not None:
                raise ValueError(f"{entry}: {name!r} ({band.name}) is already the declared band "
                                 f"{other.name}; give your band another name")
        _DECLARED[band.name.lower()] = band
    return bands


def declared_bands() -> list[Band]:
    """The bands declared so far in this process (see :func:`declare_bands`)."""
    return list(_DECLARED.values())


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
        declared = {b.sensor for b in _DECLARED.values()}
        if sensor not in SENSORS and sensor not in declared:
            raise UnknownBandError(
                f"unknown sensor {sensor!r} for band {name!r}; known sensors: "
                f"{sorted(SENSORS.keys() | declared)}"
            )
        order: tuple[str, ...] = (sensor,) if sensor in SENSORS else ()
    else:
        order = DEFAULT_SENSOR_ORDER
    band = _lookup_declared(name, sensor)
    if band is not None:
        return band
    for candidate in order:
        band = _lookup(candidate, name)
        if band is not None:
            return band
    known = [b for s in order for b in SENSORS[s]] + [
        b for b in _DECLARED.values() if sensor is None or b.sensor == sensor]
    valid = ", ".join(b.name for b in known)
    raise UnknownBandError(
        f"unknown band {name!r}: it is not in the band registry for "
        f"{', '.join(order) or sensor}. "
        f"Valid names: {valid} (aliases such as 'red', 'nir', 'vv' work too; "
        "use 'sensor:name' for another sensor). A band of your own sensor: declare it in "
        f"data.custom_bands, e.g. {{name: {name}, wavelength_nm: 550, bandwidth_nm: 100}} or "
        f"{{name: {name}, polarisation: VV}}."
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
