"""Shared plumbing of the benchmark scripts: sizes, one training run, timing, tables, JSON.

Every run goes through the same path as ``rs-metapeft fit`` (the shipped ``demo`` recipe plus
dotted overrides, built by :func:`rs_metapeft.cli.build_cli`), so the benchmarks exercise the
product and pick up option names (``model.peft.method``, ``model.meta.hypergradient`` ...) from
whatever is merged. A method whose option this checkout lacks is skipped with a note, not faked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import lightning as L  # noqa: E402
import torch  # noqa: E402

from rs_metapeft.cli import build_cli  # noqa: E402
from rs_metapeft.meta import MetaConfig  # noqa: E402
from rs_metapeft.peft import PeftConfig  # noqa: E402

RESULTS_DIR = ROOT / "benchmarks" / "results"
#: Generated data is cached here (matched by the ``data/demo*/`` ignore rule).
DATA_DIR = ROOT / "data" / "demo_bench"
RECIPE = "demo"

S2_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12",
            "B8A"]

#: Data sets of the efficacy benchmark: name -> (data module, data overrides).
DATASETS: dict[str, tuple[str, dict]] = {
    "s2": ("rs_metapeft.data.SyntheticEuroSATDataModule",
           {"bands": S2_BANDS, "synthetic_imbalance_ratio": 100}),
    "sar": ("rs_metapeft.data.SyntheticSARDataModule",
            {"bands": ["VV", "VH"], "synthetic_imbalance_ratio": 100}),
    "s2-natural": ("rs_metapeft.data.SyntheticEuroSATDataModule",
                   {"bands": S2_BANDS, "synthetic_imbalance_ratio": 1}),
}


@dataclasses.dataclass(frozen=True)
class Profile:
    """Sizes of one benchmark setting (``quick`` smoke test, ``cpu`` full, ``gpu``).

    ``meta_every`` / ``meta_warmup`` are ``None`` everywhere but ``quick``: MetaPEFT runs then use
    the product's own outer-step schedule (:class:`~rs_metapeft.meta.MetaConfig`) unless a
    method sets it. ``quick`` shortens it so that its few steps hold an outer step.
    """

    name: str
    backbone: str
    img_size: int
    patch_size: int
    depth: int | None  # None: the backbone's own depth
    steps: int
    batch_size: int
    meta_batch_size: int
    meta_every: int | None
    meta_warmup: int | None
    num_classes: int
    max_per_class: int
    val_per_class: int
    test_per_class: int
    optuna_trials: int
    precision: str = "32-true"
    accelerator: str = "cpu"
    num_workers: int = 0

    @property
    def blocks(self) -> int:
        """Transformer blocks of the backbone."""
        return self.depth or 12


PROFILES = {
    # Smoke test: seconds per run; numbers mean nothing. An outer step at every step.
    "quick": Profile("quick", "vit_tiny_patch16_224", 32, 8, 2, 3, 8, 4, 1, 0, 4, 20, 2, 3, 2),
    # 2-core CPU: ViT-Tiny 64 px / patch 8, 300 steps of batch 32 (meta batch 32; the product's
    # outer-step schedule), 10 classes, head 300 training images at imbalance 100 (the training
    # side stays long-tailed: 4 few classes of 3-14 images), 20 validation and 100 test images
    # per class: the few group's accuracy then rests on 4 x 100 test images, one image <= 0.25
    # points. How long one seed takes on this CPU is not known until measured: run one seed first.
    "cpu": Profile("cpu", "vit_tiny_patch16_224", 64, 8, None, 300, 32, 32, None, None, 10, 300,
                   20, 100, 8),
    # One H100/H200: ViT-B/16 at 224 px in bf16, 100 steps of batch 64 (about 8 epochs of the
    # long-tailed set); 4 loader workers so that reading 13-band GeoTIFFs keeps up.
    "gpu": Profile("gpu", "vit_base_patch16_224", 224, 16, None, 100, 64, 32, None, None, 10, 300,
                   10, 30, 8, "bf16-mixed", "gpu", 4),
}


def paper_rank(num_classes: int, layers: int) -> int:
    """LoRA rank of the paper's default rule, 2^floor(log2(C / 2L)), at least 1."""
    return max(1, 2 ** math.floor(math.log2(num_classes / (2 * layers))))


def machine() -> str:
    """One line saying where this ran."""
    cpu = f"{os.cpu_count()}-core {platform.machine()}, torch threads {torch.get_num_threads()}"
    if torch.cuda.is_available():
        cpu += f", GPU {torch.cuda.get_device_name(0)}"
    return (f"{platform.node() or 'host'}: {cpu}, Python {platform.python_version()}, "
            f"torch {torch.__version__}")


def command_line() -> str:
    """The command that is running, as the user would type it."""
    return " ".join(["python", *[a if " " not in a else repr(a) for a in sys.argv]])


def data_options(data_class: str | type) -> set[str]:
    """Every ``data.init_args`` key a datamodule class accepts (``__init__`` over its MRO).

    The synthetic datamodules pass ``**kwargs`` on to their parents, so a key is known when any
    class of the MRO names it.
    """
    import importlib
    import inspect

    if isinstance(data_class, str):
        module, _, name = data_class.rpartition(".")
        data_class = getattr(importlib.import_module(module), name)
    names: set[str] = set()
    for cls in data_class.__mro__:
        init = vars(cls).get("__init__")
        if init is None:
            continue
        for param in inspect.signature(init).parameters.values():
            if param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL) and param.name != "self":
                names.add(param.name)
    return names


def available(overrides: dict[str, Any], data_class: str | type | None = None) -> str | None:
    """``None`` if this checkout knows every option ``overrides`` sets, else why not.

    Checked: ``model.peft.*`` / ``model.meta.*`` keys (against :class:`PeftConfig` and
    :class:`MetaConfig`) and ``data.*`` keys other than ``class_path`` / ``init_args`` (against
    the datamodule's ``__init__``; ``data_class`` or ``overrides["data.class_path"]``, else
    every data set's datamodule of :data:`DATASETS`).
    """
    known = {"model.peft": {f.name for f in dataclasses.fields(PeftConfig)},
             "model.meta": {f.name for f in dataclasses.fields(MetaConfig)}}
    for key in overrides:
        parent, _, leaf = key.rpartition(".")
        if parent in known and leaf not in known[parent]:
            return f"option {key} is not in this checkout (it comes with another issue's merge)"
    data_keys = [k for k in overrides
                 if k.startswith("data.") and k not in ("data.class_path", "data.init_args")]
    if data_keys:
        classes = ([data_class] if data_class else [overrides["data.class_path"]]
                   if "data.class_path" in overrides
                   else sorted({cls for cls, _ in DATASETS.values()}))
        for cls in classes:
            options = data_options(cls)
            for key in data_keys:
                if key.removeprefix("data.") not in options:
                    name = cls if isinstance(cls, str) else cls.__name__
                    return (f"option {key} is not in this checkout ({name} does not take it; "
                            "it comes with another issue's merge)")
    return None


def product_defaults() -> dict[str, Any]:
    """The MetaPEFT defaults of this checkout: ``model.meta.*``, gamma's parametrisation and
    the datamodules' ``meta_*`` options (what "new defaults" means for a recorded run)."""
    import inspect

    out: dict[str, Any] = {f"model.meta.{k}": v
                           for k, v in dataclasses.asdict(MetaConfig()).items()}
    peft = dataclasses.asdict(PeftConfig())
    out.update({f"model.peft.{k}": peft[k] for k in ("gamma_param", "gamma_shape") if k in peft})
    import importlib

    for data_class in sorted({cls for cls, _ in DATASETS.values()}):
        module, _, name = data_class.rpartition(".")
        for cls in getattr(importlib.import_module(module), name).__mro__:
            init = vars(cls).get("__init__")
            if init is None:
                continue
            for param in inspect.signature(init).parameters.values():
                if param.name.startswith("meta_") and param.default is not param.empty:
                    out.setdefault(f"data.{param.name}", param.default)
    return out


def recipe_meta_resets(recipe: str = RECIPE) -> dict[str, Any]:
    """``model.meta.*`` overrides that put back the product's defaults where the recipe differs.

    The demo recipe sets its own outer-step schedule (``every_n_steps``, ``warmup_steps`` ...);
    a benchmark of "the product's defaults" must run :class:`MetaConfig`'s, so every
    ``model.meta`` key the recipe sets (but ``enabled``) is reset to the dataclass default.
    """
    from rs_metapeft.api import load_recipe

    meta = (load_recipe(recipe).get("model") or {}).get("meta") or {}
    defaults = {f.name: f.default for f in dataclasses.fields(MetaConfig)
                if f.default is not dataclasses.MISSING}
    return {f"model.meta.{k}": defaults[k] for k in meta if k != "enabled" and k in defaults}


def base_overrides(profile: Profile, dataset: str, seed: int, weights: str | None,
                   run_dir: Path) -> dict[str, Any]:
    """Overrides of the demo recipe for one data set at one profile's sizes.

    ``seed`` seeds the run (``seed_everything``) and the datamodule's meta split; the generated
    images are the same for every seed. MetaPEFT's outer-step schedule is the product's
    (:func:`recipe_meta_resets`) unless the profile sets one (``quick`` only).
    """
    data_class, data_kw = DATASETS[dataset]
    ratio = data_kw["synthetic_imbalance_ratio"]
    root = DATA_DIR / (f"{dataset.split('-')[0]}_ir{ratio:g}_c{profile.num_classes}"
                       f"_n{profile.max_per_class}_v{profile.val_per_class}"
                       f"_t{profile.test_per_class}_{profile.img_size}px")
    init = {"root": str(root), "num_classes": profile.num_classes,
            "max_per_class": profile.max_per_class, "val_per_class": profile.val_per_class,
            "test_per_class": profile.test_per_class, **data_kw}
    return run_overrides(profile, data_class, init, seed, weights, run_dir)


def run_overrides(profile: Profile, data_class: str, data: dict[str, Any], seed: int,
                  weights: str | None, run_dir: Path, recipe: str = RECIPE) -> dict[str, Any]:
    """Overrides of ``recipe`` for one run at one profile's sizes, on any data module.

    Args:
        profile: model, step, batch and loader sizes.
        data_class: ``data.class_path``.
        data: its ``init_args`` (the profile's batch sizes, workers and image size, and
            ``seed``, are added).
        seed: seeds the run (``seed_everything``) and the datamodule's meta split.
        weights: backbone weights file (``None``: random init).
        run_dir: the run's (throw-away) folder.
        recipe: the shipped recipe the overrides apply to (its ``model.meta`` keys are reset
            to the product's defaults, :func:`recipe_meta_resets`).
    """
    init = {**data, "batch_size": profile.batch_size, "meta_batch_size": profile.meta_batch_size,
            "num_workers": profile.num_workers, "image_size": profile.img_size, "seed": seed}
    out = {
        "seed_everything": seed,
        "trainer.max_steps": profile.steps, "trainer.max_epochs": -1,
        "trainer.accelerator": profile.accelerator, "trainer.precision": profile.precision,
        "trainer.logger": False, "trainer.enable_checkpointing": False,
        "trainer.enable_progress_bar": False, "trainer.enable_model_summary": False,
        "trainer.num_sanity_val_steps": 0, "trainer.check_val_every_n_epoch": 10_000,
        "trainer.default_root_dir": str(run_dir),
        "model.backbone": profile.backbone, "model.weights": weights,
        "model.img_size": profile.img_size, "model.patch_size": profile.patch_size,
        "model.backbone_kwargs": {"depth": profile.depth} if profile.depth else None,
        **recipe_meta_resets(recipe),
        "model.report_dir": str(run_dir / "report"),
        "data.class_path": data_class, "data.init_args": init,
    }
    if profile.meta_every is not None:
        out["model.meta.every_n_steps"] = profile.meta_every
    if profile.meta_warmup is not None:
        out["model.meta.warmup_steps"] = profile.meta_warmup
    return out


def fold_data_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """Move ``data.KEY`` overrides into ``data.init_args`` (which :func:`build` passes whole).

    ``data.class_path`` and ``data.init_args`` stay; every other ``data.*`` key becomes an entry
    of a copy of ``data.init_args`` (a later key wins). Without ``data.init_args`` nothing moves.
    """
    if "data.init_args" not in overrides:
        return dict(overrides)
    out: dict[str, Any] = {}
    init = dict(overrides["data.init_args"] or {})
    for key, value in overrides.items():
        if key.startswith("data.") and key not in ("data.class_path", "data.init_args"):
            init[key.removeprefix("data.")] = value
        else:
            out[key] = value
    out["data.init_args"] = init
    return out


def build(overrides: dict[str, Any], recipe: str = RECIPE):
    """Instantiate model, data and trainer from a recipe plus ``overrides`` (not run)."""
    overrides = fold_data_overrides(overrides)
    args = ["--config", recipe]
    # Non-strings as JSON (which is YAML, as jsonargparse parses values); strings as they are,
    # since a quoted string fails jsonargparse's Literal checks (e.g. trainer.precision).
    args += [f"--{key}={value if isinstance(value, str) else json.dumps(value)}"
             for key, value in overrides.items()]
    argv, sys.argv = sys.argv, sys.argv[:1]  # the script's own flags are not the CLI's
    try:
        return build_cli(args, run=False)
    finally:
        sys.argv = argv


class StepTimer(L.Callback):
    """Wall time of each training step (data already on the device)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):  # noqa: D102
        _sync()
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):  # noqa: D102
        _sync()
        self.times.append(time.perf_counter() - self._start)


class FitLoopTimer(L.Callback):
    """Wall time of the fit loop: from ``on_train_start`` to ``on_train_end``.

    Every training step and outer step is inside; data preparation (first-use generation),
    setup (band statistics) and model building are not, so runs of different methods compare
    their training alone.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def on_train_start(self, trainer, module):  # noqa: D102
        _sync()
        self._start = time.perf_counter()

    def on_train_end(self, trainer, module):  # noqa: D102
        _sync()
        self.seconds = time.perf_counter() - self._start


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def fit_and_evaluate(overrides: dict[str, Any], recipe: str = RECIPE) -> dict[str, Any]:
    """Train, validate (the selection split) and test one configuration of ``recipe``.

    Returns:
        ``report`` (the test report), ``val`` (every validation metric, e.g. ``val/mAP`` of a
        multi-label run), ``val_class_mean`` and ``val_acc`` (single-label runs; ``None``
        otherwise), ``wall_s`` (build + train + validate + test), ``train_s`` (the fit loop,
        every training and outer step, without data preparation and setup:
        :class:`FitLoopTimer`), ``fit_s`` (the whole ``trainer.fit`` call).
    """
    start = time.perf_counter()
    # The task prints its tail-class report; the benchmark prints its own table instead.
    with contextlib.redirect_stdout(io.StringIO()):
        return _fit_and_evaluate(overrides, start, recipe)


def _fit_and_evaluate(overrides: dict[str, Any], start: float, recipe: str) -> dict[str, Any]:
    cli = build(overrides, recipe)
    timer, loop = StepTimer(), FitLoopTimer()
    cli.trainer.callbacks.extend([timer, loop])
    t0 = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    fit_s = time.perf_counter() - t0
    (val,) = cli.trainer.validate(cli.model, datamodule=cli.datamodule, verbose=False)
    cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    report = cli.model.last_report
    if report is None:
        raise RuntimeError("the test step wrote no report")
    val = {key: float(value) for key, value in val.items()}
    return {"report": report, "val": val, "val_class_mean": val.get("val/class_mean_acc"),
            "val_acc": val.get("val/acc"), "wall_s": time.perf_counter() - start,
            "train_s": loop.seconds, "fit_s": fit_s, "step_times": timer.times}


def run_dir() -> tempfile.TemporaryDirectory:
    """A throw-away folder for one run's reports."""
    return tempfile.TemporaryDirectory(prefix="rs_metapeft_bench_")


# -- memory ------------------------------------------------------------------------------------
def reset_peak_memory() -> None:
    """Start a peak-memory window (CUDA only; CPU peak RSS is per process)."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


class RSSSampler:
    """Samples this process's current resident set size in a thread (CPU memory of a fit).

    ``ru_maxrss`` is a high-water mark of the whole process: when building the data or the model
    peaks higher than training does, it says nothing about training. This records the RSS when
    the window opens and the highest RSS seen (every ``interval`` seconds) until it closes.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.start_mib = self.peak_mib = current_rss_mib()
        self._stop = None
        self._thread = None

    def __enter__(self) -> RSSSampler:
        import threading

        self._stop = threading.Event()
        self.start_mib = self.peak_mib = current_rss_mib()

        def sample() -> None:
            while not self._stop.is_set():
                self.peak_mib = max(self.peak_mib, current_rss_mib())
                self._stop.wait(self.interval)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mib = max(self.peak_mib, current_rss_mib())


def current_rss_mib() -> float:
    """This process's resident set size now (Linux ``/proc/self/statm``), in MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_memory_mib() -> float:
    """Peak CUDA memory allocated since the last reset, or this process's peak RSS on CPU."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# -- statistics, tables and results --------------------------------------------------------------
def mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (0 for one value); ``None`` if nothing to average."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None, None
    return statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0


def fmt(value: Any, digits: int = 3) -> str:
    """A table cell: floats rounded, ``None`` as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """A Markdown table of ``rows`` (dicts), columns in first-seen order unless given."""
    if not rows:
        return "(no rows)"
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write_result(name: str, result: dict[str, Any], results_dir: Path = RESULTS_DIR) -> Path:
    """Write ``results_dir/name.json`` atomically; the result must say its command and machine."""
    for key in ("title", "command", "machine", "rows"):
        if key not in result:
            raise ValueError(f"benchmark result {name!r} has no {key!r}")
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=float) + "\n")
    os.replace(tmp, path)
    return path


def add_common_arguments(parser) -> None:
    """``--quick``, ``--gpu``, ``--seeds``, ``--weights``, ``--results``."""
    parser.add_argument("--quick", action="store_true",
                        help="tiny smoke-test sizes (seconds; the numbers mean nothing)")
    parser.add_argument("--gpu", action="store_true",
                        help="GPU sizes: ViT-B/16, 224 px, bf16 (needs CUDA)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--weights", default=None,
                        help="backbone weights file (e.g. the offline ViT-Tiny stand-in)")
    parser.add_argument("--results", type=Path, default=None,
                        help="folder for the JSON result (default: benchmarks/results, and "
                             "benchmarks/results/quick for --quick, which the page leaves out)")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps per run (default: the profile's)")
    parser.add_argument("--tag", default="",
                        help="suffix of the result file name (keeps CPU and GPU results apart)")


def profile_of(args) -> Profile:
    """The profile chosen on the command line."""
    if args.quick and args.gpu:
        raise SystemExit("--quick and --gpu exclude each other")
    if args.gpu and not torch.cuda.is_available():
        raise SystemExit("--gpu needs a CUDA device; none is visible")
    if args.results is None:
        args.results = RESULTS_DIR / "quick" if args.quick else RESULTS_DIR
    profile = PROFILES["quick" if args.quick else "gpu" if args.gpu else "cpu"]
    if getattr(args, "steps", None):
        profile = dataclasses.replace(profile, steps=args.steps)
    return profile


# -- step timing -------------------------------------------------------------------------------
def timed_fit(overrides: dict[str, Any]):
    """Fit one configuration with a :class:`StepTimer`; return ``(cli, step_times)``.

    On CUDA the peak-memory window is reset first, so :func:`peak_memory_mib` afterwards is
    this configuration's.
    """
    reset_peak_memory()
    with contextlib.redirect_stdout(io.StringIO()):
        cli = build(overrides)
        timer = StepTimer()
        cli.trainer.callbacks.append(timer)
        with RSSSampler() as rss:  # CPU: the RSS training itself reaches, and where it started
            cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    cli.rss_in_fit = rss
    return cli, timer.times


def memory_in_subprocess(script: Path, argv: list[str], key: str) -> dict[str, float]:
    """Peak RSS (MiB) of ``script argv --memory-of key`` run in a fresh process (CPU memory).

    The script prints ``{"peak_mib": ..., "before_fit_mib": ...}`` as its last line in that mode:
    the highest RSS sampled during the fit, and the RSS when the fit started.
    """
    import subprocess

    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(script), *argv, "--memory-of", key],
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"memory run of {key!r} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
