"""Multi-label long tail: does MetaPEFT beat its fixed-gamma twin on the rare labels?

Multi-label scene classification on the synthetic BigEarthNet-like set
(:func:`rs_metapeft.data.bigearthnet.generate_bigearthnet_like`: 19 labels, several per scene,
label frequencies falling over a long tail, co-occurring labels), read through TorchGeo's
``BigEarthNet``, with Sentinel-2 alone (``s2``: ``data.bands: s2``, 12 bands) and Sentinel-1 +
Sentinel-2 (``s1s2``: ``data.bands: all``, 14 bands). Every run goes through the product's CLI
path: the shipped ``demo_multilabel`` recipe (asymmetric loss, per-label thresholds chosen on the
validation split, label-balanced meta-validation batches) plus dotted overrides
(:func:`harness.run_overrides`), with the same step budget.

Methods (the efficacy benchmark's definitions, :func:`efficacy.methods`; LoRA rank by the paper's
rule for 19 labels, alpha 1):

* ``MetaPEFT (product defaults)``: LoRA at q, k, v, o, fc1, fc2 of every block, gamma learned
  with the product's meta defaults (:class:`rs_metapeft.meta.MetaConfig`, its outer-step
  schedule, the datamodule's meta protocol);
* ``fixed twin (LoRA all six)``: the same modules, meta disabled (gamma fixed at 1);
* ``LoRA q,v (paper defaults)`` and ``linear probe``.

Seeds are paired: a seed gives every method the same data (generated once, ``data_seed`` 0), the
same initialisation, data order and meta split. Reported per data set and method: macro mAP (each
label counts once) and few-label mAP (the labels with the fewest training samples, the report's
``few`` group: at the ``cpu`` sizes 3 labels with 4-12 training and 6-17 test positives), mean and
Student-t 95 % CI over seeds (:func:`efficacy.mean_ci`); the paired differences MetaPEFT - twin of
both, mean and 95 % CI of the per-seed differences (:func:`efficacy.paired_ci`); and the compute
ratio against the twin, the median over seeds of the per-seed ratio of the fit loop's wall time
(``train_s``: every training and outer step; ``fit_s``, the whole ``trainer.fit`` call with its
setup, is recorded too).

Sizes (``--quick``: a 2-block ViT at 32 px, 3 steps, 12 px patches, an outer step at every step:
seconds, the numbers mean nothing; default ``cpu``: ViT-Tiny 64 px / patch 8 (pass the offline
stand-in weights with ``--weights``), 50 steps of batch 32, meta batch 32, the product's outer-step
schedule (4 outer steps), 600 training, 200 validation and 1000 test scenes of 60 px; ``--gpu``:
ViT-B/16 224 px bf16). The JSON says how many test positives the few labels have.

    python benchmarks/multilabel.py --tag cpu \\
        --weights ../shared/backbones/vit_tiny_p8_64_kd_effnetlite0.pth

The JSON (``benchmarks/results/multilabel[-TAG].json``) is rewritten atomically after every
finished run; ``--resume`` keeps the runs already in it and skips those (dataset, seed, method).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import efficacy  # noqa: E402
import harness  # noqa: E402

FORMAT = 1  # of the result file; --resume refuses another
RECIPE = "demo_multilabel"
DATA_CLASS = "rs_metapeft.data.SyntheticBigEarthNetDataModule"
NUM_LABELS = 19
#: Data sets: name -> ``data.bands``.
DATASETS = {"s2": "s2", "s1s2": "all"}

METAPEFT = "MetaPEFT (product defaults)"
TWIN = efficacy.TWIN
REFERENCE = efficacy.REFERENCE
PROBE = efficacy.PROBE
ORDER = (PROBE, REFERENCE, TWIN, METAPEFT)
#: Test metrics kept per run: name -> how to read it from the label-tail report.
METRICS = ("macro_map", "micro_map", "macro_f1", "micro_f1", "many", "medium", "few")


@dataclasses.dataclass(frozen=True)
class DataSizes:
    """The generated set's sizes (scenes per split, pixels of the 10 m bands)."""

    num_train: int
    num_val: int
    num_test: int
    patch_size: int


#: Per profile: the generated set, and the training steps (the profiles' own are EuroSAT's).
DATA_SIZES = {"quick": DataSizes(24, 12, 24, 12), "cpu": DataSizes(600, 200, 1000, 60),
              "gpu": DataSizes(2000, 300, 2000, 120)}
STEPS = {"quick": 3, "cpu": 50, "gpu": 200}


def methods(rank: int) -> dict[str, dict[str, Any]]:
    """The four methods: name -> overrides (the efficacy benchmark's, :func:`efficacy.methods`)."""
    table = efficacy.methods(rank)
    return {PROBE: table[efficacy.PROBE], REFERENCE: table[efficacy.REFERENCE],
            TWIN: table[efficacy.TWIN], METAPEFT: table[efficacy.NEW]}


def profile_of(args) -> tuple[harness.Profile, DataSizes]:
    """The chosen profile, with this benchmark's step budget unless ``--steps`` sets one."""
    profile = harness.profile_of(args)
    if not args.steps:
        profile = dataclasses.replace(profile, steps=STEPS[profile.name])
    return dataclasses.replace(profile, num_classes=NUM_LABELS), DATA_SIZES[profile.name]


def sizes_record(profile: harness.Profile, data: DataSizes) -> dict[str, Any]:
    """What a run's sizes were (the profile without the EuroSAT-only fields, and the data).

    The generated scenes' size is ``scene_px``: the data module calls it ``patch_size``, which
    in the profile is the ViT's patch.
    """
    skip = {"max_per_class", "val_per_class", "test_per_class", "optuna_trials"}
    scenes = dataclasses.asdict(data)
    scenes["scene_px"] = scenes.pop("patch_size")
    return {**{k: v for k, v in dataclasses.asdict(profile).items() if k not in skip}, **scenes}


def data_root(data: DataSizes) -> Path:
    """Where the generated set is cached (both data sets read the same files)."""
    return harness.DATA_DIR / (f"bigearthnet_n{data.num_train}_v{data.num_val}"
                               f"_t{data.num_test}_{data.patch_size}px")


def base_overrides(profile: harness.Profile, data: DataSizes, dataset: str, seed: int,
                   weights: str | None, run_dir: Path) -> dict[str, Any]:
    """Overrides of the ``demo_multilabel`` recipe for one data set and seed."""
    init = {"root": str(data_root(data)), "bands": DATASETS[dataset], "num_classes": NUM_LABELS,
            **dataclasses.asdict(data)}
    return harness.run_overrides(profile, DATA_CLASS, init, seed, weights, run_dir, RECIPE)


# -- one run -------------------------------------------------------------------------------------
def summarise(run: dict[str, Any], seed: int, method: str,
              overrides: dict[str, Any]) -> dict[str, Any]:
    """The record kept per run: seed, method, times, validation mAP, test metrics, few labels."""
    rep = run["report"]
    test = {k: rep[k] for k in ("macro_map", "micro_map", "macro_f1", "micro_f1")}
    test.update(rep["group_map"])
    few = [{"label": r["class"], "train_count": r["train_count"], "test_positives": r["test_count"]}
           for r in rep["per_class"] if r["group"] == "few"]
    return {
        "seed": seed, "method": method, "overrides": overrides,
        "train_s": run["train_s"], "fit_s": run["fit_s"], "wall_s": run["wall_s"],
        "trainable_parameters": rep.get("trainable_parameters"),
        "val": {"mAP": run["val"].get("val/mAP")},
        "test": test,
        "groups": rep.get("groups_description"), "few_labels": few,
        "selection": {k: rep.get(k) for k in ("effective_scale", "switched_off", "meta")},
    }


def run_one(base: dict[str, Any], method: str, overrides: dict[str, Any],
            seed: int) -> dict[str, Any]:
    """Train and evaluate one method at one seed in a throw-away folder."""
    with harness.run_dir() as folder:
        full = {**base, **overrides, "trainer.default_root_dir": folder,
                "model.report_dir": str(Path(folder) / "report")}
        return summarise(harness.fit_and_evaluate(full, RECIPE), seed, method, overrides)


# -- aggregation ---------------------------------------------------------------------------------
def aggregate(runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per method: mean and 95 % CI over seeds of every metric, median times."""
    rows = []
    for name in [m for m in ORDER if m in runs]:
        recs = runs[name]
        row: dict[str, Any] = {"method": name, "n_seeds": len(recs),
                               "seeds": sorted(r["seed"] for r in recs)}
        row.update({k: efficacy.mean_ci([r["test"].get(k) for r in recs]) for k in METRICS})
        row["val_map"] = efficacy.mean_ci([r["val"]["mAP"] for r in recs])
        for time in ("train_s", "fit_s", "wall_s"):
            row[f"{time}_median"] = statistics.median(r[time] for r in recs)
        row["trainable_parameters"] = recs[0].get("trainable_parameters")
        rows.append(row)
    return rows


def dataset_part(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Everything the JSON says about one data set, from its run records."""
    runs = {k: sorted(v, key=lambda r: r["seed"]) for k, v in runs.items()}
    first = next(r for recs in runs.values() for r in recs)
    few = first["few_labels"]  # the same data and groups in every run of the data set

    def diff(metric: str) -> dict[str, Any]:
        return efficacy.paired_diff(runs, METAPEFT, TWIN, metric)

    return {
        "groups": first["groups"],
        "few_labels": few,
        "few_test_positives": sum(r["test_positives"] for r in few),
        "few_test_positives_min": min((r["test_positives"] for r in few), default=None),
        "rows": aggregate(runs),
        "paired": {"metapeft_minus_twin_macro_map": diff("macro_map"),
                   "metapeft_minus_twin_few": diff("few")},
        "compute_ratio_vs_twin": efficacy.compute_ratio(runs, METAPEFT, TWIN),
        "fit_ratio_vs_twin": efficacy.compute_ratio(runs, METAPEFT, TWIN, time="fit_s"),
        "runs": runs,
    }


TABLE_COLUMNS = ["dataset", "method", "n", "macro mAP", "few mAP", "micro mAP", "many mAP",
                 "medium mAP", "macro − twin", "few − twin", "train_s", "fit_s",
                 "trainable_parameters"]


def display_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per data set and method: mean ± 95 % CI half-width, paired columns vs the twin."""
    out = []
    for cells, row, runs in efficacy.method_rows(result):
        for key, col in (("macro_map", "macro mAP"), ("few", "few mAP"),
                         ("micro_map", "micro mAP"), ("many", "many mAP"),
                         ("medium", "medium mAP")):
            cells[col] = efficacy.ci_cell(row[key])
        for col, metric in (("macro − twin", "macro_map"), ("few − twin", "few")):
            cells[col] = efficacy.paired_cell(runs, row["method"], TWIN, metric)
        cells["train_s"] = round(row["train_s_median"], 1)
        cells["fit_s"] = round(row["fit_s_median"], 1)
        cells["trainable_parameters"] = row["trainable_parameters"]
        out.append(cells)
    return out


def paired_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """MetaPEFT − twin per data set: macro and few-label mAP, and the compute ratios."""
    out = []
    for dataset, part in result["datasets"].items():
        p = part["paired"]
        ratio, fit = part["compute_ratio_vs_twin"], part["fit_ratio_vs_twin"]
        out.append({"dataset": dataset, "comparison": f"{METAPEFT} − {TWIN}",
                    "macro mAP": efficacy.diff_cell(p["metapeft_minus_twin_macro_map"]),
                    "few mAP": efficacy.diff_cell(p["metapeft_minus_twin_few"]),
                    "train_s ratio": None if ratio is None else round(ratio, 3),
                    "fit_s ratio": None if fit is None else round(fit, 3),
                    "few labels (test positives)": ", ".join(
                        f"{r['label']} ({r['test_positives']})" for r in part["few_labels"])})
    return out


# -- the run -------------------------------------------------------------------------------------
def result_path(args, profile: harness.Profile) -> Path:
    """``RESULTS/multilabel-TAG.json`` (``-PROFILE`` without a tag)."""
    return args.results / f"multilabel-{args.tag or profile.name}.json"


def load_previous(path: Path, sizes: dict[str, Any], args) -> dict[str, Any]:
    """The runs of an earlier result of the same tag: ``{dataset: {method: [records]}}``.

    Raises:
        SystemExit: the file is of another format, sizes, product defaults or ``--weights``.
    """
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    now = json.loads(json.dumps(harness.product_defaults()))
    for what, then, current in (("format", data.get("format"), FORMAT),
                                ("sizes", data.get("sizes"), sizes),
                                ("--weights", data.get("weights"), args.weights),
                                ("product MetaPEFT defaults", data.get("product_defaults"), now)):
        if then != current:
            raise SystemExit(f"--resume: {path} was run with other {what} ({then!r}, now "
                             f"{current!r}); use another --tag")
    return {ds: {m: list(recs) for m, recs in part.get("runs", {}).items()}
            for ds, part in data.get("datasets", {}).items()}


def benchmark(args, on_update=None) -> dict[str, Any]:
    """Run every method on every data set and seed; return the result dict.

    ``on_update(result)``, when given, receives the result after every finished run.
    """
    profile, data = profile_of(args)
    rank = harness.paper_rank(NUM_LABELS, profile.blocks)
    table = methods(rank)
    wanted = [m for m in ORDER if m in (args.methods or ORDER)]
    sizes = sizes_record(profile, data)
    path = result_path(args, profile)
    runs = load_previous(path, sizes, args) if args.resume else {}
    defaults = harness.product_defaults()
    # Generated before the first run, so that no run's fit_s holds the generation.
    from rs_metapeft.data.bigearthnet import MultiLabelSpec, generate_bigearthnet_like

    generate_bigearthnet_like(data_root(data), MultiLabelSpec(**dataclasses.asdict(data)))

    def result() -> dict[str, Any]:
        order = [*args.datasets, *(ds for ds in runs if ds not in args.datasets)]
        datasets = {ds: dataset_part(runs[ds]) for ds in order if runs.get(ds)}
        seeds = sorted({r["seed"] for part in datasets.values()
                        for recs in part["runs"].values() for r in recs})
        return {"format": FORMAT, "benchmark": "multilabel", "profile": profile.name,
                "sizes": sizes, "rank": rank, "product_defaults": defaults, "seeds": seeds,
                "seeds_requested": list(args.seeds), "weights": args.weights,
                "data": {"class_path": DATA_CLASS, "root": str(data_root(data)),
                         "bands": DATASETS, "labels": NUM_LABELS},
                "datasets": datasets}

    for seed in args.seeds:
        for dataset in args.datasets:
            base = base_overrides(profile, data, dataset, seed, args.weights, Path("."))
            for name in wanted:
                if any(r["seed"] == seed for r in runs.get(dataset, {}).get(name, [])):
                    continue
                row = run_one(base, name, table[name], seed)
                print(f"[{dataset} seed {seed}] {name}: macro mAP {row['test']['macro_map']:.3f} "
                      f"few {harness.fmt(row['test']['few'])} train {row['train_s']:.1f}s "
                      f"(fit {row['fit_s']:.1f}s, all {row['wall_s']:.1f}s)", flush=True)
                runs.setdefault(dataset, {}).setdefault(name, []).append(row)
                if on_update is not None:
                    on_update(result())
    return result()


def finish(result: dict[str, Any], args) -> dict[str, Any]:
    """Add rows, tables, notes and provenance to ``result`` (in place) and return it."""
    s = result["sizes"]
    few = "; ".join(f"{ds}: {len(part['few_labels'])} few labels with "
                    f"{part['few_test_positives']} test positives (fewest "
                    f"{part['few_test_positives_min']} on one label)"
                    for ds, part in result["datasets"].items())
    result.update(
        title=f"Multi-label long tail: MetaPEFT against its fixed-gamma twin ({result['profile']}"
              f" profile{', ' + args.tag if args.tag else ''})",
        command=harness.command_line(), machine=harness.machine(),
        rows=display_rows(result),
        tables={"MetaPEFT − twin (per seed, paired; mean [95 % CI], fractions) and compute":
                paired_rows(result)},
        notes=(f"Seeds {result['seeds']} (paired: same data and initialisation per seed); "
               f"{s['steps']} steps of batch {s['batch_size']} (meta batch "
               f"{s['meta_batch_size']}) per run; {s['backbone']} at {s['img_size']} px / patch "
               f"{s['patch_size']}; LoRA rank {result['rank']} (paper rule), alpha 1; recipe "
               f"{RECIPE}; synthetic BigEarthNet-like set of {s['num_train']} training, "
               f"{s['num_val']} validation and {s['num_test']} test scenes ({s['scene_px']} px "
               f"10 m bands), 19 labels; s2 = 12 Sentinel-2 bands, s1s2 = VH, VV + 12 "
               f"Sentinel-2 bands. mAP cells: mean ± 95 % CI half-width over seeds (Student t); "
               f"differences are per-seed paired, mean [95 % CI]. {few}. train_s ratio: median "
               f"over seeds of MetaPEFT / twin fit-loop time (every training and outer step); "
               f"fit_s: the whole trainer.fit call. MetaPEFT outer steps: "
               + ("the product's schedule (MetaConfig)" if s["meta_every"] is None else
                  f"every {s['meta_every']} steps after {s['meta_warmup']}")
               + f". Weights: {args.weights or 'random init'}."),
    )
    return result


def write(result: dict[str, Any], args, quiet: bool = False) -> dict[str, Any]:
    """Finish ``result``, write the JSON atomically and (unless ``quiet``) print the tables."""
    finish(result, args)
    profile, _ = profile_of(args)
    path = harness.write_result(result_path(args, profile).stem, result, args.results)
    if not quiet:
        print(harness.format_table(result["rows"], TABLE_COLUMNS))
        for title, rows in result["tables"].items():
            print(f"\n{title}\n{harness.format_table(rows)}")
        print(f"\nwrote {path}")
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line entry point; returns the written result."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    harness.add_common_arguments(parser)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--methods", nargs="+", default=None, choices=list(ORDER),
                        metavar="NAME", help=f"methods by name (default: all of {list(ORDER)})")
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs of the existing result file of this tag and skip "
                             "them (dataset, seed, method)")
    args = parser.parse_args(argv)
    profile, _ = profile_of(args)
    path = result_path(args, profile)
    if path.is_file() and not args.resume:
        backup = path.with_suffix(".json.bak")
        os.replace(path, backup)  # a forgotten --resume must not cost the runs already made
        print(f"moved the existing {path.name} to {backup.name} (pass --resume to continue it)")
    result = benchmark(args, on_update=lambda partial: write(partial, args, quiet=True))
    return write(result, args)


if __name__ == "__main__":
    main()
