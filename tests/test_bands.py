import pytest

from rs_metapeft.bands import SAR, BandSet, UnknownBandError, resolve_band, resolve_bands


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
