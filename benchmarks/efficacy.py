"""Efficacy: does one MetaPEFT run beat its fixed-gamma twin, and by more than noise?

Cross-spectral, long-tailed transfer from an RGB-pretrained ViT (``--weights``; without it the
backbone is randomly initialised) to the synthetic 13-band Sentinel-2 set (``s2``) and its SAR
twin (``sar``) at imbalance ratio 100, and a natural-distribution variant (``s2-natural``,
ratio 1). Every run goes through the product's CLI path (the ``demo`` recipe plus dotted
overrides, :func:`harness.build`) with the same step budget. Optuna (TPE) gets ``trials`` runs
of that budget per seed and picks its trial on the VALIDATION split (class-mean accuracy); the
test split only reports.

Methods (``--methods`` picks any subset by name; default: the six main rows):

* ``linear probe``, ``full fine-tuning``, ``LoRA q,v (paper defaults)``;
* ``fixed twin (LoRA all six)``: LoRA at q, k, v, o, fc1, fc2 of every block, gamma fixed at 1;
* ``MetaPEFT (new defaults)``: the same modules with the product's meta defaults
  (:class:`rs_metapeft.meta.MetaConfig`, the datamodule's meta protocol);
* ``MetaPEFT (old defaults)``: the same modules with the previous release's settings spelled out;
* ``--ablation`` adds rows that each revert ONE change of the new defaults.

LoRA rank follows the paper's rule (:func:`harness.paper_rank`), alpha 1.

Statistics: per method, mean and Student-t 95 % confidence interval over seeds; per comparison,
the mean and 95 % CI of the per-seed PAIRED difference (same seed, same data, same meta split),
over the seeds where both runs exist. Targets, per data set:

  * MetaPEFT (new) few-group accuracy >= twin + 3 points, and the paired CI's low end > 0;
  * MetaPEFT (new) few-group accuracy >= the Optuna-selected trial's - 0.5 points (paired mean);
  * training-loop time (``train_s``: the whole fit loop, outer steps included) <= 1.25x the
    twin's (median over seeds of the per-seed ratio).

Sizes (``--quick``: a 2-block ViT at 32 px, 3 steps, an outer step at every step: seconds, the
numbers mean nothing; default ``cpu``: ViT-Tiny 64 px / patch 8, 300 steps of batch 32, meta
batch 32, the product's outer-step schedule, 10 classes, head class 300 training images at
imbalance 100, 20 validation and 100 test images per class (the few group, 4 classes, then has
400 test images: one image moves its accuracy by <= 0.25 points); ``--gpu``: ViT-B/16 224 px
bf16, 100 steps of batch 64). How long one seed takes on a CPU is not known until measured:
measure with one seed first, then extend with ``--resume``:

    python benchmarks/efficacy.py --datasets s2 sar --seeds 0 --ablation --tag cpu-lt \\
        --weights ../shared/backbones/vit_tiny_p8_64_kd_effnetlite0.pth
    python benchmarks/efficacy.py --datasets s2 sar --seeds 0 1 2 3 4 --optuna-seeds 0 1 2 \\
        --ablation --tag cpu-lt --resume \\
        --weights ../shared/backbones/vit_tiny_p8_64_kd_effnetlite0.pth

The JSON (``benchmarks/results/efficacy[-TAG].json``) is rewritten atomically after every
finished run; ``--resume`` keeps the runs already in it and skips those (dataset, seed, method)
runs, so a stopped run loses at most the run in progress (an Optuna search keeps its finished
trials in ``efficacy-TAG.optuna-DATASET-seedN.partial.json`` and resumes at the next trial).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

from rs_metapeft.io import atomic_write_json  # noqa: E402

FORMAT = 2  # of the result file; --resume refuses another
LORA_ALL = ["q", "k", "v", "o", "fc1", "fc2"]

PROBE = "linear probe"
FULL = "full fine-tuning"
REFERENCE = "LoRA q,v (paper defaults)"
TWIN = "fixed twin (LoRA all six)"
NEW = "MetaPEFT (new defaults)"
OLD = "MetaPEFT (old defaults)"
OPTUNA = "Optuna TPE (selected on val)"
MAIN = (PROBE, FULL, REFERENCE, TWIN, NEW, OLD)

#: The previous release's MetaPEFT settings, spelled out (the product's defaults have moved on).
OLD_DEFAULTS: dict[str, Any] = {
    "model.peft.gamma_param": "identity",
    "model.meta.optimizer": "adam", "model.meta.lr": 0.02, "model.meta.lr_schedule": "constant",
    "model.meta.lookahead_rule": "sgd", "model.meta.hypergradient": "unrolled",
    "model.meta.hvp_batch_size": 8,
    "model.meta.every_n_steps": 10, "model.meta.warmup_steps": 10,
    # The old default meta protocol, holdout, was not disjoint from training: the inner steps
    # fitted the meta-validation images too. That protocol is gone; ``resample`` (fresh draws
    # from the training set, which the inner steps also fit) is the leaky protocol that remains.
    "data.meta_protocol": "resample", "data.meta_balanced_val": False,
}

#: Ablations: the new defaults with ONE change reverted (name -> the overrides that revert it).
ABLATIONS: dict[str, dict[str, Any]] = {
    "ablation: leaky meta-val": {"data.meta_protocol": "resample",
                                 "data.meta_balanced_val": False},
    "ablation: holdout meta-val": {"data.meta_protocol": "holdout"},
    "ablation: SGD look-ahead": {"model.meta.lookahead_rule": "sgd"},
    "ablation: identity gamma": {"model.peft.gamma_param": "identity"},
    "ablation: Adam meta optimiser": {"model.meta.optimizer": "adam", "model.meta.lr": 0.02,
                                      "model.meta.lr_schedule": "constant"},
}

METRICS = ("overall", "class_mean", "many", "medium", "few")
REPORT_KEYS = {"overall": "overall_accuracy", "class_mean": "class_mean_accuracy",
               "macro_f1": "macro_f1"}
GROUPS = ("many", "medium", "few")


def methods(rank: int) -> dict[str, dict[str, Any]]:
    """Every method (main rows, then ablations): name -> overrides. Edit here to change one.

    Args:
        rank: the paper's default LoRA rank for this task (:func:`harness.paper_rank`).
    """
    lora = {"model.peft.rank": rank, "model.peft.alpha": 1.0}
    fixed = {"model.meta.enabled": False}
    six = {**lora, "model.peft.positions": list(LORA_ALL)}
    new = {**six, "model.meta.enabled": True}
    table = {
        PROBE: {**fixed, "model.peft.positions": []},
        FULL: {**fixed, "model.peft.method": "full", "model.optimizer.lr": 1e-4},
        REFERENCE: {**fixed, **lora, "model.peft.positions": ["q", "v"]},
        TWIN: {**six, **fixed},
        NEW: new,
        OLD: {**new, **OLD_DEFAULTS},
    }
    table.update({name: {**new, **revert} for name, revert in ABLATIONS.items()})
    return table


# -- statistics ----------------------------------------------------------------------------------
def t_quantile(n: int, level: float = 0.95) -> float:
    """Two-sided Student-t quantile for ``n`` values (``n - 1`` degrees of freedom)."""
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, n - 1))


def mean_ci(values: list[float | None]) -> dict[str, float | int | None]:
    """Mean and Student-t 95 % interval of ``values`` (``None``s dropped).

    ``mean`` is ``None`` without values; ``ci95_low`` / ``ci95_high`` are ``None`` below two.
    """
    vals = [float(v) for v in values if v is not None]
    n = len(vals)
    out: dict[str, float | int | None] = {"mean": None, "ci95_low": None, "ci95_high": None,
                                          "n_seeds": n}
    if n:
        out["mean"] = statistics.fmean(vals)
    if n >= 2:
        half = t_quantile(n) * statistics.stdev(vals) / math.sqrt(n)
        out["ci95_low"], out["ci95_high"] = out["mean"] - half, out["mean"] + half
    return out


def paired_ci(a: dict[int, float | None], b: dict[int, float | None]) -> dict[str, Any]:
    """Mean and Student-t 95 % CI of ``a[seed] - b[seed]`` over the seeds both have.

    Every field but ``n_seeds`` is ``None`` below two pairs (no interval, no claim).
    """
    diffs = [a[s] - b[s] for s in sorted(set(a) & set(b))
             if a[s] is not None and b[s] is not None]
    out = mean_ci(diffs)
    if len(diffs) < 2:
        out["mean"] = None
    return out


# -- one run -------------------------------------------------------------------------------------
def summarise(run: dict[str, Any], seed: int, method: str,
              overrides: dict[str, Any]) -> dict[str, Any]:
    """The record kept per run: seed, method, overrides, times, validation and test metrics."""
    rep = run["report"]
    test = {k: rep[v] for k, v in REPORT_KEYS.items()}
    test.update({g: rep["group_accuracy"][g] for g in GROUPS})
    per_class = rep.get("per_class") or []
    few = [c for c in per_class if c.get("group") == "few"]
    return {
        "seed": seed, "method": method, "overrides": overrides,
        "train_s": run["train_s"], "wall_s": run["wall_s"],
        "trainable_parameters": rep.get("trainable_parameters"),
        "val": {"class_mean": run["val_class_mean"], "acc": run.get("val_acc")},
        "test": test,
        "few_classes": len(few), "few_test_images": sum(c.get("test_count", 0) for c in few),
        # What the meta step selected (empty for runs without modulators or meta off).
        "selection": {k: rep.get(k) for k in ("effective_scale", "initial_scale",
                                               "switched_off", "gamma_history", "meta")},
    }


def _clean(overrides: dict[str, Any]) -> dict[str, Any]:
    """Overrides without the per-run temporary folders (for the record)."""
    return {k: v for k, v in overrides.items()
            if k not in ("trainer.default_root_dir", "model.report_dir")}


def base_record(profile: harness.Profile, dataset: str, weights: str | None) -> dict[str, Any]:
    """The overrides every run of ``dataset`` shares (seed and temporary folders left out)."""
    base = _clean(harness.base_overrides(profile, dataset, 0, weights, Path(".")))
    base.pop("seed_everything", None)
    base["data.init_args"] = {k: v for k, v in base["data.init_args"].items() if k != "seed"}
    return base


def run_one(base: dict[str, Any], method: str, overrides: dict[str, Any],
            seed: int) -> dict[str, Any]:
    """Train and evaluate one method at one seed in a throw-away folder."""
    with harness.run_dir() as folder:
        full = {**base, **overrides, "trainer.default_root_dir": folder,
                "model.report_dir": str(Path(folder) / "report")}
        return summarise(harness.fit_and_evaluate(full), seed, method, overrides)


def optuna_space(trial, rank: int, blocks: int) -> dict[str, Any]:
    """The search space: LoRA positions x layers x alpha (fixed gamma, paper rank)."""
    positions = [p for p in LORA_ALL if trial.suggest_categorical(p, [False, True])]
    if not positions:
        positions = ["q", "v"]  # an empty set would be a linear probe, which is its own row
    layer_sets = {"all": None, "last half": list(range(blocks // 2, blocks)),
                  "last quarter": list(range(blocks - max(blocks // 4, 1), blocks)),
                  "first half": list(range(blocks // 2 or 1))}
    layers = layer_sets[trial.suggest_categorical("layers", list(layer_sets))]
    alpha = trial.suggest_float("alpha", 0.25, 16.0, log=True)
    return {"model.meta.enabled": False, "model.peft.positions": positions,
            "model.peft.layers": layers, "model.peft.rank": rank, "model.peft.alpha": alpha}


def run_optuna(base: dict[str, Any], rank: int, blocks: int, trials: int,
               seed: int, journal: Path | None = None) -> dict[str, Any]:
    """``trials`` fixed-gamma runs chosen by TPE; the record of the best validation trial.

    Its ``train_s`` / ``wall_s`` are the whole search's (all trials); ``best_train_s`` is the
    selected trial's own.

    ``journal``, when given, is a JSON file that receives every finished trial (atomically),
    so a stopped search resumes at its next trial instead of its first: the finished trials
    are given back to the study (``Study.add_trial``) and TPE continues from them. A resumed
    search proposes what TPE proposes given those trials, which need not be what an unbroken
    search with the same seed would have proposed (the sampler's random state is not kept);
    the record says ``resumed_at``. The journal is removed when the search is complete.
    """
    import optuna
    from optuna.distributions import distribution_to_json, json_to_distribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    runs: list[dict[str, Any]] = []
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(4, trials))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    if journal is not None and journal.is_file():
        for row in json.loads(journal.read_text()):
            study.add_trial(optuna.trial.create_trial(
                params=row["params"], value=row["val"]["class_mean"],
                distributions={k: json_to_distribution(v)
                               for k, v in row["distributions"].items()}))
            runs.append(row)
        print(f"Optuna seed {seed}: resuming at trial {len(runs)} of {trials} from {journal}",
              flush=True)
    resumed_at = len(runs)

    def objective(trial) -> float:
        overrides = optuna_space(trial, rank, blocks)
        row = run_one(base, OPTUNA, overrides, seed)
        row["params"] = dict(trial.params)
        row["distributions"] = {k: distribution_to_json(d) for k, d in trial.distributions.items()}
        runs.append(row)
        if journal is not None:
            atomic_write_json(journal, runs)
        return row["val"]["class_mean"]

    study.optimize(objective, n_trials=max(trials - len(runs), 0))
    best = dict(runs[study.best_trial.number])
    best["best_train_s"] = best["train_s"]
    best["train_s"] = sum(r["train_s"] for r in runs)
    best["wall_s"] = sum(r["wall_s"] for r in runs)
    best["trials"] = [{k: r[k] for k in ("params", "val", "test", "train_s", "wall_s")}
                      for r in runs]
    best.pop("distributions", None)
    if resumed_at:
        best["resumed_at"] = resumed_at
    if journal is not None:
        journal.unlink(missing_ok=True)
    return best


# -- aggregation ---------------------------------------------------------------------------------
def _order(names) -> list[str]:
    rank = {n: i for i, n in enumerate((*MAIN, OPTUNA, *ABLATIONS))}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


#: Per-run timings (seconds) a comparison can read besides the test metrics.
TIMES = ("train_s", "fit_s", "wall_s")


def by_seed(runs: dict[str, list[dict]], method: str, metric: str) -> dict[int, float | None]:
    """``{seed: value}`` of one method: a test metric, or one of :data:`TIMES`."""
    out = {}
    for r in runs.get(method, []):
        out[r["seed"]] = r.get(metric) if metric in TIMES else r["test"].get(metric)
    return out


def aggregate(runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per method: mean and 95 % CI over seeds of every metric, median ``train_s``."""
    rows = []
    for name in _order(runs):
        recs = runs[name]
        row: dict[str, Any] = {"method": name, "n_seeds": len(recs),
                               "seeds": sorted(r["seed"] for r in recs)}
        for key in (*METRICS, "macro_f1"):
            row[key] = mean_ci([r["test"].get(key) for r in recs])
        row["val_class_mean"] = mean_ci([r["val"]["class_mean"] for r in recs])
        row["train_s_median"] = statistics.median(r["train_s"] for r in recs)
        row["wall_s_median"] = statistics.median(r["wall_s"] for r in recs)
        row["trainable_parameters"] = recs[0].get("trainable_parameters")
        rows.append(row)
    return rows


def compute_ratio(runs: dict[str, list[dict]], method: str,
                  against: str = TWIN, time: str = "train_s") -> float | None:
    """Median over seeds of ``time(method) / time(against)`` (seeds where both ran).

    ``time`` is one of :data:`TIMES`: the fit loop (``train_s``, the default), the whole
    ``trainer.fit`` call (``fit_s``) or build + fit + evaluation (``wall_s``).
    """
    a, b = by_seed(runs, method, time), by_seed(runs, against, time)
    ratios = [a[s] / b[s] for s in set(a) & set(b) if a[s] is not None and b[s]]
    return statistics.median(ratios) if ratios else None


def paired_diff(runs: dict[str, list[dict]], method: str, against: str,
                metric: str) -> dict[str, Any]:
    """Per-seed paired ``metric(method) - metric(against)``: mean and 95 % CI."""
    return paired_ci(by_seed(runs, method, metric), by_seed(runs, against, metric))


def paired(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The paired comparisons of one data set (fractions, per-seed differences)."""

    def diff(a: str, b: str, metric: str) -> dict[str, Any]:
        return paired_diff(runs, a, b, metric)

    out: dict[str, Any] = {
        "metapeft_minus_twin_few": diff(NEW, TWIN, "few"),
        "metapeft_minus_twin_overall": diff(NEW, TWIN, "overall"),
        "metapeft_minus_optuna_few": diff(NEW, OPTUNA, "few"),
        "metapeft_minus_optuna_overall": diff(NEW, OPTUNA, "overall"),
        "old_minus_twin_few": diff(OLD, TWIN, "few"),
        "old_minus_twin_overall": diff(OLD, TWIN, "overall"),
        "metapeft_minus_old_few": diff(NEW, OLD, "few"),
        "metapeft_minus_old_overall": diff(NEW, OLD, "overall"),
        "metapeft_minus_reference_few": diff(NEW, REFERENCE, "few"),
        "ablations": {},
    }
    for name in ABLATIONS:
        if name in runs:
            out["ablations"][name] = {
                "ablation_minus_new_few": diff(name, NEW, "few"),
                "ablation_minus_new_overall": diff(name, NEW, "overall"),
                "ablation_minus_twin_few": diff(name, TWIN, "few"),
                "ablation_minus_twin_overall": diff(name, TWIN, "overall"),
            }
    return out


def check_targets(part: dict[str, Any]) -> list[dict[str, Any]]:
    """PASS / FAIL / n/a of each target on one data set (paired statistics)."""
    p, ratio = part["paired"], part["compute_ratio_vs_twin"].get(NEW)

    def verdict(target: str, value, ok: bool | None, detail: str) -> dict[str, Any]:
        status = "n/a" if ok is None else "PASS" if ok else "FAIL"
        return {"target": target, "value": value, "status": status, "detail": detail}

    twin = p["metapeft_minus_twin_few"]
    ok = None if twin["mean"] is None else (twin["mean"] >= 0.03 and twin["ci95_low"] > 0)
    opt = p["metapeft_minus_optuna_few"]
    return [
        verdict("few >= twin + 3 pt, CI low end > 0", twin["mean"], ok,
                f"paired {diff_cell(twin)}"),
        verdict("few >= Optuna - 0.5 pt", opt["mean"],
                None if opt["mean"] is None else opt["mean"] >= -0.005,
                f"paired {diff_cell(opt)}"),
        verdict("train_s <= 1.25x twin", ratio, None if ratio is None else ratio <= 1.25,
                "median over seeds of the per-seed ratio"),
    ]


def dataset_part(runs: dict[str, list[dict[str, Any]]], profile: harness.Profile,
                 base: dict[str, Any]) -> dict[str, Any]:
    """Everything the JSON says about one data set, from its run records."""
    runs = {k: sorted(v, key=lambda r: r["seed"]) for k, v in runs.items()}
    records = [r for recs in runs.values() for r in recs]
    few_classes = max((r.get("few_classes", 0) for r in records), default=0)
    few_images = max((r.get("few_test_images", 0) for r in records), default=0)
    part = {
        "steps": profile.steps, "batch_size": profile.batch_size,
        "meta_batch_size": profile.meta_batch_size,
        "val_per_class": profile.val_per_class, "test_per_class": profile.test_per_class,
        "few_classes": few_classes, "few_test_images": few_images,
        # Few-group accuracy is the mean of its classes' recalls: one test image of a few class
        # moves it by 1 / (few classes x test images per class).
        "few_one_image_pt": (100 / (few_classes * profile.test_per_class)
                             if few_classes else None),
        "base_overrides": base,
        "rows": aggregate(runs),
        "paired": paired(runs),
        "compute_ratio_vs_twin": {m: compute_ratio(runs, m) for m in (NEW, OLD, *ABLATIONS)
                                  if m in runs},
        "runs": runs,
    }
    part["targets"] = check_targets(part)
    return part


# -- tables --------------------------------------------------------------------------------------
def ci_cell(stat: dict[str, Any]) -> str | None:
    """``mean ± half-width`` of a 95 % CI (``mean`` alone for one seed)."""
    if stat is None or stat.get("mean") is None:
        return None
    if stat.get("ci95_high") is None:
        return f"{stat['mean']:.3f}"
    return f"{stat['mean']:.3f} ± {stat['ci95_high'] - stat['mean']:.3f}"


def diff_cell(stat: dict[str, Any] | None) -> str | None:
    """``+0.031 [+0.004, +0.058]`` (paired mean and 95 % CI), or ``None``."""
    if not stat or stat.get("mean") is None:
        return None
    return (f"{stat['mean']:+.3f} [{stat['ci95_low']:+.3f}, {stat['ci95_high']:+.3f}] "
            f"n={stat['n_seeds']}")


TABLE_COLUMNS = ["dataset", "method", "n", *METRICS, "few − twin", "overall − twin",
                 "few − new", "overall − new", "train_s", "trainable_parameters"]


def paired_cell(runs: dict[str, list[dict]], method: str, against: str,
                metric: str) -> str | None:
    """The table cell of :func:`paired_diff` (``None`` for the reference itself)."""
    return None if method == against else diff_cell(paired_diff(runs, method, against, metric))


def method_rows(result: dict[str, Any]):
    """Yield ``(cells, row, runs)`` per data set and method of ``result``.

    ``cells`` starts as ``{"dataset", "method", "n"}``; the caller adds its columns.
    """
    for dataset, part in result["datasets"].items():
        for row in part["rows"]:
            yield ({"dataset": dataset, "method": row["method"], "n": row["n_seeds"]}, row,
                   part["runs"])


def display_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per data set and method: mean ± 95 % CI half-width over seeds, paired columns.

    ``few − twin`` etc. are per-seed paired differences (mean [95 % CI] n=seeds) against the
    fixed twin and against ``MetaPEFT (new defaults)``.
    """
    out = []
    for cells, row, runs in method_rows(result):
        cells.update({m: ci_cell(row[m]) for m in METRICS})
        for ref, short in ((TWIN, "twin"), (NEW, "new")):
            for metric in ("few", "overall"):
                cells[f"{metric} − {short}"] = paired_cell(runs, row["method"], ref, metric)
        cells["train_s"] = round(row["train_s_median"], 1)
        cells["trainable_parameters"] = row["trainable_parameters"]
        out.append(cells)
    return out


def paired_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The headline paired differences and compute ratios, one row per data set and comparison."""
    names = {"metapeft_minus_twin": f"{NEW} − {TWIN}", "metapeft_minus_optuna": f"{NEW} − Optuna",
             "old_minus_twin": f"{OLD} − {TWIN}", "metapeft_minus_old": f"{NEW} − {OLD}",
             "metapeft_minus_reference": f"{NEW} − {REFERENCE}"}
    out = []
    for dataset, part in result["datasets"].items():
        p = part["paired"]
        for key, label in names.items():
            few, overall = p.get(f"{key}_few"), p.get(f"{key}_overall")
            if few is None or (few["n_seeds"] == 0 and (overall or {}).get("n_seeds", 0) == 0):
                continue
            out.append({"dataset": dataset, "comparison": label, "few": diff_cell(few),
                        "overall": diff_cell(overall),
                        "train_s ratio": None})
        for method, ratio in part["compute_ratio_vs_twin"].items():
            if method in (NEW, OLD):
                out.append({"dataset": dataset, "comparison": f"{method} / {TWIN}",
                            "few": None, "overall": None,
                            "train_s ratio": None if ratio is None else round(ratio, 3)})
    return out


def ablation_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Which change moves what: each ablation against the new defaults (and the twin)."""
    out = []
    for dataset, part in result["datasets"].items():
        for name, stats in part["paired"]["ablations"].items():
            ratio = part["compute_ratio_vs_twin"].get(name)
            out.append({"dataset": dataset, "ablation": name,
                        "reverts": ", ".join(f"{k}={v}" for k, v in ABLATIONS[name].items()),
                        "few − new": diff_cell(stats["ablation_minus_new_few"]),
                        "overall − new": diff_cell(stats["ablation_minus_new_overall"]),
                        "few − twin": diff_cell(stats["ablation_minus_twin_few"]),
                        "overall − twin": diff_cell(stats["ablation_minus_twin_overall"]),
                        "train_s / twin": None if ratio is None else round(ratio, 3)})
    return out


def target_lines(result: dict[str, Any]) -> list[str]:
    """One ``PASS`` / ``FAIL`` / ``n/a`` line per target and data set."""
    return [f"{t['status']:4} [{dataset}] {NEW}: {t['target']} (value {harness.fmt(t['value'])};"
            f" {t['detail']})"
            for dataset, part in result["datasets"].items() for t in part["targets"]]


# -- the run -------------------------------------------------------------------------------------
def result_path(args, profile: harness.Profile) -> Path:
    """``RESULTS/efficacy-TAG.json`` (``-PROFILE`` without a tag)."""
    return args.results / ("efficacy" + (f"-{args.tag}" if args.tag else f"-{profile.name}")
                           + ".json")


def optuna_journal(path: Path, dataset: str, seed: int) -> Path:
    """The file an unfinished Optuna search keeps its finished trials in (beside ``path``)."""
    return path.with_name(f"{path.stem}.optuna-{dataset}-seed{seed}.partial.json")


def load_previous(path: Path, profile: harness.Profile, rank: int,
                  args=None) -> dict[str, Any]:
    """The runs of an earlier result of the same tag: ``{dataset: {method: [records]}}``.

    Raises:
        SystemExit: the file is of another format, or was run at other sizes, with other
            product defaults, other ``--weights`` or another (non-zero) Optuna trial count.
    """
    import json

    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    if data.get("format") != FORMAT:
        raise SystemExit(f"--resume: {path} is an older efficacy result (format "
                         f"{data.get('format', 1)}, not {FORMAT}); use another --tag")
    if data.get("sizes") != dataclasses.asdict(profile) or data.get("rank") != rank:
        raise SystemExit(f"--resume: {path} was run at other sizes ({data.get('sizes')}); use "
                         "another --tag or the same profile and --steps")
    now = json.loads(json.dumps(harness.product_defaults()))
    changed = {k: (v, now.get(k)) for k, v in (data.get("product_defaults") or {}).items()
               if now.get(k) != v}
    if changed:  # "new defaults" would mean two things within one file
        raise SystemExit(f"--resume: the product's MetaPEFT defaults changed since {path} was "
                         f"started (option: (then, now)) {changed}; use another --tag")
    if args is not None and data.get("weights") != args.weights:
        raise SystemExit(f"--resume: {path} was run with --weights {data.get('weights')}, not "
                         f"{args.weights}")
    if args is not None and data.get("optuna_trials") and args.optuna_trials and \
            data["optuna_trials"] != args.optuna_trials:
        raise SystemExit(f"--resume: {path} has Optuna searches of {data['optuna_trials']} "
                         f"trials, not {args.optuna_trials}")
    return {ds: {m: list(recs) for m, recs in part.get("runs", {}).items()}
            for ds, part in data.get("datasets", {}).items()}


def selected_methods(args, table: dict[str, dict[str, Any]], parser=None) -> list[str]:
    """``--methods`` (default: the six main rows), plus the ablations with ``--ablation``."""
    wanted = list(args.methods) if args.methods else list(MAIN)
    unknown = [m for m in wanted if m not in table]
    if unknown:
        message = f"unknown method(s) {unknown}; choose from {list(table)}"
        if parser is not None:
            parser.error(message)
        raise SystemExit(message)
    if args.ablation:
        wanted += [m for m in ABLATIONS if m not in wanted]
    return wanted


def assemble(runs: dict[str, dict[str, list[dict]]], profile: harness.Profile, rank: int, args,
             seeds_requested: list[int], optuna_seeds: list[int], skipped: dict[str, str],
             defaults: dict[str, Any]) -> dict[str, Any]:
    """The result dict of ``runs`` (``{dataset: {method: [records]}}``), before :func:`finish`."""
    # Data sets of an earlier session not asked for this time are kept as they were.
    order = [*args.datasets, *(ds for ds in runs if ds not in args.datasets)]
    datasets = {ds: dataset_part(runs[ds], profile, base_record(profile, ds, args.weights))
                for ds in order if runs.get(ds)}
    seeds = sorted({r["seed"] for part in datasets.values()
                    for recs in part["runs"].values() for r in recs})
    return {"format": FORMAT, "profile": profile.name, "sizes": dataclasses.asdict(profile),
            "product_defaults": defaults, "rank": rank, "seeds": seeds,
            "seeds_requested": seeds_requested,
            "optuna_seeds": optuna_seeds, "optuna_trials": args.optuna_trials,
            "weights": args.weights, "skipped": dict(skipped),
            "datasets": datasets}


def merge(args, profile: harness.Profile) -> dict[str, Any]:
    """Fold the finished runs of the ``--merge`` files into this tag's result; run nothing.

    Runs split over processes or machines (one tag each) become one paired result. A run of
    the same data set, method and seed already in this tag's file is kept, not replaced.

    Raises:
        SystemExit: a file is missing, or was run at other sizes, defaults or weights.
    """
    rank = harness.paper_rank(profile.num_classes, profile.blocks)
    runs = load_previous(result_path(args, profile), profile, rank, args)
    for other in args.merge:
        if not other.is_file():
            raise SystemExit(f"--merge: {other} does not exist")
        for dataset, methods_runs in load_previous(other, profile, rank, args).items():
            for method, records in methods_runs.items():
                mine = runs.setdefault(dataset, {}).setdefault(method, [])
                seen = {r["seed"] for r in mine}
                mine += [r for r in records if r["seed"] not in seen]
                mine.sort(key=lambda r: r["seed"])
    seeds = sorted({r["seed"] for part in runs.values() for recs in part.values() for r in recs})
    searched = sorted({r["seed"] for part in runs.values() for r in part.get(OPTUNA, [])})
    result = assemble(runs, profile, rank, args, seeds, searched, {}, harness.product_defaults())
    return {**result, "merged_from": [p.name for p in args.merge]}


def benchmark(args, on_update=None) -> dict[str, Any]:
    """Run every selected method on every data set and seed; return the result dict.

    ``on_update(result)``, when given, receives the result after every finished run.
    """
    profile = harness.profile_of(args)
    rank = harness.paper_rank(profile.num_classes, profile.blocks)
    table = methods(rank)
    wanted = selected_methods(args, table)
    optuna_seeds = (args.optuna_seeds if args.optuna_seeds is not None else args.seeds[:3])
    if args.optuna_trials and optuna_seeds:
        try:
            import optuna  # noqa: F401
        except ImportError:
            raise SystemExit("Optuna is not installed: pip install -e '.[bench]' (or pass "
                             "--optuna-trials 0)") from None
    path = result_path(args, profile)
    runs = load_previous(path, profile, rank, args) if args.resume else {}
    skipped: dict[str, str] = {}
    defaults = harness.product_defaults()

    def result() -> dict[str, Any]:
        return assemble(runs, profile, rank, args, list(args.seeds), list(optuna_seeds),
                        skipped, defaults)

    def done(dataset: str, method: str, seed: int) -> bool:
        return any(r["seed"] == seed for r in runs.get(dataset, {}).get(method, []))

    def record(dataset: str, row: dict[str, Any]) -> None:
        runs.setdefault(dataset, {}).setdefault(row["method"], []).append(row)
        if on_update is not None:
            on_update(result())

    for seed in args.seeds:
        for dataset in args.datasets:
            base = harness.base_overrides(profile, dataset, seed, args.weights, Path("."))
            data_class = harness.DATASETS[dataset][0]
            for name in wanted:
                why = harness.available(table[name], data_class)
                if why:
                    skipped[name] = why
                    continue
                if done(dataset, name, seed):
                    continue
                row = run_one(base, name, table[name], seed)
                print(f"[{dataset} seed {seed}] {name}: few {harness.fmt(row['test']['few'])} "
                      f"overall {row['test']['overall']:.3f} train {row['train_s']:.1f}s "
                      f"({row['wall_s']:.1f}s)", flush=True)
                record(dataset, row)
            if args.optuna_trials and seed in optuna_seeds and not done(dataset, OPTUNA, seed):
                best = run_optuna(base, rank, profile.blocks, args.optuna_trials, seed,
                                  journal=optuna_journal(path, dataset, seed))
                print(f"[{dataset} seed {seed}] {OPTUNA}: few {harness.fmt(best['test']['few'])} "
                      f"val {best['val']['class_mean']:.3f} params {best['params']}", flush=True)
                record(dataset, best)
    return result()


def finish(result: dict[str, Any], args, profile: harness.Profile) -> dict[str, Any]:
    """Add rows, tables, notes and provenance to ``result`` (in place) and return it."""
    targets = target_lines(result)
    skipped = [f"{name}: {why}" for name, why in result["skipped"].items()]
    parts = list(result["datasets"].values())
    one = parts[0] if parts else {}
    result.update(
        title=f"Efficacy: long-tailed cross-spectral transfer ({profile.name} profile"
              + (f", {args.tag}" if args.tag else "") + ")",
        command=harness.command_line(), machine=harness.machine(),
        rows=display_rows(result),
        tables={"Paired differences (per seed; mean [95 % CI], fractions)": paired_rows(result),
                "Ablations: which change moves what (vs MetaPEFT new defaults)":
                    ablation_rows(result),
                "Targets": [{"dataset": ds, **t} for ds, part in result["datasets"].items()
                            for t in part["targets"]]},
        notes=(f"Seeds {result['seeds']}; {profile.steps} steps of batch {profile.batch_size} "
               f"(meta batch {profile.meta_batch_size}) per run; {profile.backbone} at "
               f"{profile.img_size} px / patch {profile.patch_size}; LoRA rank {result['rank']} "
               f"(paper rule), alpha 1; {profile.val_per_class} validation and "
               f"{profile.test_per_class} test images per class (few group: "
               f"{one.get('few_classes', '?')} classes, one test image = "
               f"{harness.fmt(one.get('few_one_image_pt'), 2)} points). Cells: mean ± 95 % CI "
               f"half-width over seeds (Student t); differences are per-seed paired, mean "
               f"[95 % CI]. Optuna: {result['optuna_trials']} TPE trials on seeds "
               f"{result['optuna_seeds']}, selected on validation class-mean accuracy; its "
               f"train_s is the whole search. MetaPEFT outer steps: "
               + ("the product's schedule (MetaConfig)" if profile.meta_every is None else
                  f"every {profile.meta_every} steps after {profile.meta_warmup}")
               + f". Weights: {args.weights or 'random init'}. Targets: " + "; ".join(targets)
               + ("; skipped: " + "; ".join(skipped) if skipped else "")),
    )
    return result


def write(result: dict[str, Any], args, profile: harness.Profile,
          quiet: bool = False) -> dict[str, Any]:
    """Finish ``result``, write the JSON atomically and (unless ``quiet``) print the tables."""
    finish(result, args, profile)
    path = harness.write_result(result_path(args, profile).stem, result, args.results)
    if not quiet:
        print(harness.format_table(result["rows"], TABLE_COLUMNS))
        for title, rows in result["tables"].items():
            if rows and title != "Targets":
                print(f"\n{title}\n{harness.format_table(rows)}")
        print()
        print("\n".join(target_lines(result)
                        + [f"SKIPPED {n}: {w}" for n, w in result["skipped"].items()]))
        print(f"wrote {path}")
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line entry point; returns the written result."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    harness.add_common_arguments(parser)
    parser.add_argument("--datasets", nargs="+", default=["s2", "sar"],
                        choices=list(harness.DATASETS))
    parser.add_argument("--methods", nargs="+", default=None, metavar="NAME",
                        help=f"methods by name (default: the six main rows {list(MAIN)}); any "
                             f"of those and the ablation rows {list(ABLATIONS)}")
    parser.add_argument("--ablation", action="store_true",
                        help="add the ablation rows (new defaults with one change reverted)")
    parser.add_argument("--optuna-trials", type=int, default=None,
                        help="Optuna trials per seed (default: the profile's; 0 skips Optuna)")
    parser.add_argument("--optuna-seeds", type=int, nargs="*", default=None,
                        help="seeds that get an Optuna search (default: the first 3 of --seeds)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs of the existing result file of this tag and skip "
                             "them (dataset, seed, method; Optuna per dataset and seed)")
    parser.add_argument("--merge", type=Path, nargs="+", default=None, metavar="RESULT",
                        help="fold the finished runs of these result files (same sizes, "
                             "defaults and weights; e.g. seeds run under other tags in parallel) "
                             "into this tag's file, rewrite its tables, and run nothing")
    args = parser.parse_args(argv)
    profile = harness.profile_of(args)
    selected_methods(args, methods(harness.paper_rank(profile.num_classes, profile.blocks)),
                     parser)
    if args.optuna_trials is None:
        args.optuna_trials = profile.optuna_trials
    if args.merge:
        return write(merge(args, profile), args, profile)
    path = result_path(args, profile)
    if path.is_file() and not args.resume:
        backup = path.with_suffix(".json.bak")
        os.replace(path, backup)  # a forgotten --resume must not cost hours of runs
        print(f"moved the existing {path.name} to {backup.name} (pass --resume to continue it)")
    result = benchmark(args, on_update=lambda partial: write(partial, args, profile, quiet=True))
    return write(result, args, profile)


if __name__ == "__main__":
    main()
