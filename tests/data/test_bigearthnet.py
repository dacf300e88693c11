import json
from dataclasses import replace

import numpy as np
import pytest
import rasterio
import torch
from rasterio.enums import Resampling
from torchgeo.datasets import BigEarthNet

from rs_metapeft.data.bigearthnet import (
    BIGEARTHNET_ALL_BANDS,
    BIGEARTHNET_S1_BANDS,
    BIGEARTHNET_S2_BANDS,
    CLC_CODES,
    MultiLabelSpec,
    _draw_labels,
    _render,
    _surfaces,
    generate_bigearthnet_like,
    label_frequencies,
    label_names,
    to_19_classes,
)
from rs_metapeft.data.synthetic import EUROSAT_BAND_ORDER

CHANNELS = {"s1": BIGEARTHNET_S1_BANDS, "s2": BIGEARTHNET_S2_BANDS, "all": BIGEARTHNET_ALL_BANDS}


def _manifest(root):
    return json.loads((root / "synthetic.json").read_text())


@pytest.mark.parametrize("num_classes", [19, 43])
@pytest.mark.parametrize("bands", ["s1", "s2", "all"])
def test_torchgeo_bigearthnet_reads_the_generated_files(bigearthnet_root, bands, num_classes):
    manifest = _manifest(bigearthnet_root)
    spec = manifest["spec"]
    for split, size in (("train", spec["num_train"]), ("val", spec["num_val"])):
        ds = BigEarthNet(str(bigearthnet_root), split=split, bands=bands, num_classes=num_classes)
        assert len(ds) == size
    sample = ds[0]
    # TorchGeo resamples every band file to 120 x 120, whatever the patch size
    assert sample["image"].shape == (len(CHANNELS[bands]), 120, 120)
    assert sample["label"].shape == (num_classes,)
    labels = torch.stack([ds[i]["label"] for i in range(len(ds))])
    assert labels.sum(0).tolist() == manifest["label_counts"]["val"][str(num_classes)]
    assert (labels.sum(1) >= 1).all()  # every patch has a label, also in the 19-class set


def test_channel_order_is_torchgeos(bigearthnet_root):
    """Our band lists name the channels TorchGeo stacks: each channel is its band's file."""
    ds = BigEarthNet(str(bigearthnet_root), split="train", bands="all", num_classes=19)
    image = ds[1]["image"]
    s2_dir, s1_dir = ds.folders[1]["s2"], ds.folders[1]["s1"]
    for c, band in enumerate(BIGEARTHNET_ALL_BANDS):
        folder = s1_dir if band in BIGEARTHNET_S1_BANDS else s2_dir
        path = f"{folder}/{folder.rsplit('/', 1)[-1]}_{band}.tif"
        with rasterio.open(path) as src:
            plane = src.read(1, out_shape=(120, 120), out_dtype="int32",
                             resampling=Resampling.bilinear)
        assert torch.equal(image[c], torch.from_numpy(plane).float()), band


def test_files_have_bigearthnet_dtypes_resolutions_and_json(bigearthnet_root):
    size = _manifest(bigearthnet_root)["spec"]["patch_size"]
    s2, s1 = (bigearthnet_root / "bigearthnet-train.csv").read_text().splitlines()[0].split(",")
    s2_dir = bigearthnet_root / "BigEarthNet-v1.0" / s2
    for band, side, pixel in (("B02", size, 10), ("B05", size // 2, 20), ("B01", size // 6, 60)):
        with rasterio.open(s2_dir / f"{s2}_{band}.tif") as src:
            assert (src.width, src.dtypes[0], src.res[0]) == (side, "uint16", pixel)
            assert src.crs.to_epsg() == 32632
    with rasterio.open(bigearthnet_root / "BigEarthNet-S1-v1.0" / s1 / f"{s1}_VV.tif") as src:
        vv = src.read(1)
        assert src.dtypes[0] == "float32" and -40 < vv.mean() < 5  # backscatter in dB
    s1_json = json.loads((bigearthnet_root / "BigEarthNet-S1-v1.0" / s1
                          / f"{s1}_labels_metadata.json").read_text())
    s2_json = json.loads((s2_dir / f"{s2}_labels_metadata.json").read_text())
    assert s1_json["corresponding_s2_patch"] == s2
    assert s1_json["labels"] == s2_json["labels"] and set(s2_json["labels"]) <= set(label_names(43))


def test_labels_are_long_tailed_and_co_occur_within_corine_groups():
    spec = MultiLabelSpec(min_label_count=0)
    labels = _draw_labels(spec, 20_000, np.random.default_rng(0)).astype(np.float64)
    freq = labels.mean(0)
    assert freq.max() / freq[freq > 0].min() > 100  # frequencies span orders of magnitude
    expected = label_frequencies(spec)
    assert np.corrcoef(np.argsort(np.argsort(freq)), np.argsort(np.argsort(expected)))[0, 1] > 0.9
    assert (to_19_classes(labels.astype(np.uint8)).sum(1) >= 1).all()
    # lift P(a, b) / (P(a) P(b)) of frequent label pairs: above 1 inside a group, not across
    groups = np.array([code // 100 for code in CLC_CODES])
    frequent = np.flatnonzero(freq > 0.05)
    lift = (labels.T @ labels / len(labels)) / np.outer(freq, freq)
    pairs = [(a, b) for a in frequent for b in frequent if a < b]
    inside = [lift[a, b] for a, b in pairs if groups[a] == groups[b]]
    across = [lift[a, b] for a, b in pairs if groups[a] != groups[b]]
    assert np.mean(inside) > 1.3 and np.mean(across) < 1.1
    independent = _draw_labels(replace(spec, co_occurrence=0.0), 20_000,
                               np.random.default_rng(0)).astype(np.float64)
    f0 = independent.mean(0)
    lift0 = (independent.T @ independent / len(independent)) / np.outer(f0, f0)
    assert np.mean([lift0[a, b] for a, b in pairs if groups[a] == groups[b]]) < 1.15


def test_min_label_count_puts_every_label_in_every_split(bigearthnet_root):
    counts = _manifest(bigearthnet_root)["label_counts"]
    for split in ("train", "val", "test"):
        assert min(counts[split]["43"]) >= 1


def test_image_content_follows_the_labels():
    """Water scenes are dark in NIR and in VV; forest scenes bright in NIR."""
    surfaces = _surfaces(0)
    names = label_names(43)
    nir = EUROSAT_BAND_ORDER.index("B08")
    seen = {}
    for name in ("Sea and ocean", "Coniferous forest", "Continuous urban fabric"):
        row = np.zeros(43, np.uint8)
        row[names.index(name)] = 1
        refl, db, _ = _render(row, 24, surfaces, np.random.default_rng(0))
        seen[name] = (refl[nir].mean(), db[0].mean())
    assert seen["Sea and ocean"][0] < 0.05 < seen["Coniferous forest"][0]
    vv = [seen[n][1] for n in ("Sea and ocean", "Coniferous forest", "Continuous urban fabric")]
    assert vv == sorted(vv) and vv[0] < vv[-1]


def test_generation_is_deterministic_and_skips_existing(tmp_path, bigearthnet_root):
    spec = MultiLabelSpec(**_manifest(bigearthnet_root)["spec"])
    again = generate_bigearthnet_like(tmp_path, spec)
    a = BigEarthNet(str(again), split="test", bands="all")[2]
    b = BigEarthNet(str(bigearthnet_root), split="test", bands="all")[2]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    mtime = (again / "synthetic.json").stat().st_mtime_ns
    generate_bigearthnet_like(again, spec)
    assert (again / "synthetic.json").stat().st_mtime_ns == mtime


@pytest.mark.parametrize(("field", "value"), [("patch_size", 20), ("co_occurrence", 1.0),
                                              ("num_val", 0), ("head_frequency", 1.5)])
def test_bad_spec_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        MultiLabelSpec(**{field: value})


def test_labels_are_learnable_from_the_pixels():
    """Per-band means and spreads alone predict the frequent labels well above chance (AUC 0.5)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from rs_metapeft.data.synthetic import _optical_dn, _sar_db

    raw = _draw_labels(MultiLabelSpec(), 600, np.random.default_rng(0))
    labels = to_19_classes(raw)
    surfaces, features = _surfaces(0), []
    for i, row in enumerate(raw):
        rng = np.random.default_rng([0, i])
        refl, db, _ = _render(row, 12, surfaces, rng)
        x = np.concatenate([_optical_dn(refl, rng) / 1e4, _sar_db(db, rng) / 10])
        features.append(np.concatenate([x.mean((1, 2)), x.std((1, 2))]))
    x = np.asarray(features)
    aucs = []
    for k in np.argsort(-labels[:400].sum(0))[:8]:
        model = LogisticRegression(max_iter=2000).fit(x[:400], labels[:400, k])
        aucs.append(roc_auc_score(labels[400:, k], model.decision_function(x[400:])))
    assert np.mean(aucs) > 0.65 and min(aucs) > 0.55
