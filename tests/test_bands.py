import pytest
import torch

from rs_metapeft import bands as registry
from rs_metapeft.bands import (
    OPTICAL,
    SAR,
    BandMismatchError,
    BandSet,
    UnknownBandError,
    check_compatible,
    declare_bands,
    resolve_band,
    resolve_bands,
)


def test_aliases_resolve_to_the_same_sentinel2_band():
    assert resolve_band("red") == resolve_band("B4") == resolve_band("B04")
    assert resolve_band("B08A").name == "B8A"


def test_sensor_qualified_names():
    assert resolve_band("landsat8:red").wavelength_nm == 655.0


def test_sar_polarisations_have_no_wavelength():
    vv = resolve_band("VV")
    assert vv.modality == SAR and vv.wavelength_nm is None
    assert BandSet(("VV", "VH")).modality == SAR


def test_unknown_band_names_the_band():
    with pytest.raises(UnknownBandError, match="'B99'"):
        resolve_bands(["B04", "B99"])


def test_duplicate_bands_are_refused():
    with pytest.raises(UnknownBandError, match="more than once"):
        resolve_bands(["red", "B04"])


def test_every_sensor_is_registered_with_its_band_count():
    from rs_metapeft.bands import SENSORS

    counts = {name: len(bands) for name, bands in SENSORS.items()}
    assert counts == {"sentinel2": 13, "landsat8": 9, "landsat7": 7, "rgbn": 4, "rgb": 3,
                      "sentinel1": 4}
    for bands in SENSORS.values():
        for band in bands:
            if band.modality == SAR:
                assert band.wavelength_nm is None
            else:
                assert 400 < band.wavelength_nm < 2300 and band.bandwidth_nm > 0


def test_sensor_aliases():
    assert resolve_band("landsat9:red") == resolve_band("landsat8:B4")
    assert resolve_band("naip:nir") == resolve_band("planetscope:N") == resolve_band("rgbn:nir")
    assert resolve_band("S2:nir").name == "B08"
    assert resolve_band("landsat7:B3").wavelength_nm == 662.0
    assert [b.name for b in resolve_bands(["HH", "hv"])] == ["HH", "HV"]
    with pytest.raises(UnknownBandError, match="unknown sensor 'modis'"):
        resolve_band("modis:red")


def test_compatible_bands_compare_by_band_not_by_spelling():
    check_compatible(["B04", "B03", "B02"], ["red", "green", "B2"])
    check_compatible(["VV", "VH"], 2)  # data without band names: its count
    with pytest.raises(BandMismatchError, match="same names in a different order"):
        check_compatible(["VV", "VH"], ["vh", "vv"])
    with pytest.raises(BandMismatchError, match=r"missing from x.tif: \['B08'\]; not known to "
                                                r"the checkpoint: \['B11'\]; refit"):
        check_compatible(["B04", "B08"], ["red", "B11"], where="the checkpoint", data="x.tif",
                         fix="refit")
    with pytest.raises(BandMismatchError, match=r"x.tif has 3 bands but the model was made for 2 "
                                                r"\(VV, VH\); give data with exactly these bands"):
        check_compatible(["VV", "VH"], 3, data="x.tif")
    assert issubclass(BandMismatchError, ValueError)  # existing `except ValueError` still catch it


def test_fused_sentinel1_sentinel2_bands():
    """BigEarthNet's fused input: both polarisations and every Sentinel-2 band, in one list."""
    from rs_metapeft.data.bigearthnet import BIGEARTHNET_ALL_BANDS

    bands = resolve_bands(list(BIGEARTHNET_ALL_BANDS))
    assert [b.sensor for b in bands[:2]] == ["sentinel1"] * 2
    assert all(b.sensor == "sentinel2" and b.wavelength_nm for b in bands[2:])
    assert BandSet(BIGEARTHNET_ALL_BANDS).modality == "mixed"
    check_compatible(BIGEARTHNET_ALL_BANDS, ["vh", "vv", "coastal", "blue", "green", "red",
                                             "rededge1", "rededge2", "rededge3", "nir", "nir08",
                                             "water_vapour", "swir16", "swir22"])
    with pytest.raises(BandMismatchError, match="different order"):
        check_compatible(BIGEARTHNET_ALL_BANDS, ["VV", "VH", *BIGEARTHNET_ALL_BANDS[2:]])


@pytest.fixture
def declared(monkeypatch):
    """A registry of its own for the test (declarations last for the process otherwise)."""
    monkeypatch.setattr(registry, "_DECLARED", {})


def test_declared_bands_resolve_by_name_alias_and_sensor(declared):
    with pytest.raises(UnknownBandError, match="declare it in data.custom_bands"):
        resolve_band("MSS4_green")
    mss, alos = declare_bands([
        {"name": "MSS4_green", "wavelength_nm": 550, "bandwidth_nm": 100, "aliases": ["mss1"],
         "sensor": "landsat_mss"},
        {"name": "ALOS_HV", "polarisation": "hv"},
    ])
    assert mss.modality == OPTICAL and mss.key == "landsat_mss:MSS4_green"
    assert resolve_band("mss4_GREEN") == resolve_band("mss1") == resolve_band("landsat_mss:mss1")
    assert alos.modality == SAR and alos.polarisation == "HV" and alos.wavelength_nm is None
    assert resolve_band("custom:ALOS_HV") == alos
    check_compatible(["MSS4_green"], ["mss1"])
    # Declared again (another recipe in this process): the new declaration replaces the old.
    declare_bands([{"name": "MSS4_green", "wavelength_nm": 560}])
    assert resolve_band("MSS4_green").wavelength_nm == 560.0
    with pytest.raises(UnknownBandError):
        resolve_band("mss1")


@pytest.mark.parametrize(("spec", "message"), [
    ({"name": "red", "wavelength_nm": 650}, "already the registered band sentinel2:B04"),
    ({"name": "X1", "wavelength_nm": 650, "aliases": ["VV"]}, "'VV' .* sentinel1:VV"),
    ({"name": "X1"}, "either wavelength_nm .* or polarisation"),
    ({"name": "X1", "wavelength_nm": 650, "polarisation": "VV"}, "either wavelength_nm"),
    ({"name": "X1", "polarisation": "XX"}, "polarisation must be one of VV, VH, HH, HV"),
    ({"name": "X1", "wavelength_nm": -5}, "wavelength_nm must be a positive number"),
    ({"name": "X1", "wavelength_nm": 650, "centre": 3}, r"unknown key\(s\) \['centre'\]"),
    ({"name": "a:b", "wavelength_nm": 650}, "no ':'"),
    ("X1", "must be a mapping"),
])
def test_bad_band_declarations_name_the_entry(declared, spec, message):
    with pytest.raises(ValueError, match=r"data.custom_bands\[1\].*" + message):
        declare_bands([{"name": "ok", "wavelength_nm": 500}, spec])


def test_a_name_declared_twice_is_refused(declared):
    with pytest.raises(ValueError, match=r"custom_bands\[1\]: 'dup' is declared twice"):
        declare_bands([{"name": "dup", "wavelength_nm": 500},
                       {"name": "other", "wavelength_nm": 600, "aliases": ["dup"]}])


def test_stems_place_declared_bands_by_wavelength_and_polarisation(declared):
    from rs_metapeft.models.stem import WavelengthHyperStem, rgb_band_indices

    declare_bands([{"name": "far_red", "wavelength_nm": 700},
                   {"name": "teal", "wavelength_nm": 500},
                   {"name": "my_vh", "polarisation": "VH"},
                   {"name": "my_vv", "polarisation": "VV"}])
    assert rgb_band_indices(["teal", "far_red"]) == [1, 0, 0]
    stem = WavelengthHyperStem(["my_vv", "my_vh"], torch.nn.Conv2d(3, 8, 4, 4))
    vv = WavelengthHyperStem.POLARISATIONS.index("VV")
    vh = WavelengthHyperStem.POLARISATIONS.index("VH")
    assert torch.equal(stem.embeddings(), stem.sar_embedding[[vv, vh]])
