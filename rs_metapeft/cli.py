"""The ``rs-metapeft`` command line, on LightningCLI / jsonargparse conventions.

``fit``, ``validate``, ``test`` and ``predict`` are LightningCLI's (``--config``,
``--print_config``, dotted overrides such as ``--trainer.max_steps=20``); ``fit`` also tests the
trained model and writes the report. The other subcommands are small tools around runs and
recipes: ``demo``, ``stats``, ``report``, ``compare``, ``export``, ``recipes`` and
``predict-chips`` / ``predict-scene``. ``rs-metapeft SUBCOMMAND --help`` says more.
"""

from __future__ import annotations

import ast
import os
import re
import sys
import time
from argparse import ArgumentError
from collections.abc import Callable
from pathlib import Path

from jsonargparse import ArgumentParser
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from .checkpointing import (
    METADATA_KEY,
    LastCheckpoint,
    check_checkpoint_file,
    find_last_checkpoint,
    read_checkpoint,
)
from .console import quiet_console, recipe_label, run_header
from .data.datamodules import LongTailDataModule
from .io import refuse_existing
from .recipes import copy_recipe, list_recipes, recipe_path, recipe_summary
from .tasks import MetaPEFTTask

__all__ = ["RSMetaPEFTCLI", "build_cli", "main"]

#: Help of LightningCLI's own subcommands: what each does and an example.
_LIGHTNING_HELP = {
    "fit": ("Train with a recipe (checkpoints/last.ckpt every --checkpoint.every_n_train_steps "
            "steps and at the end; --ckpt_path last resumes the newest exactly), then test and "
            "write report.json/.md/.html into the run folder.",
            "rs-metapeft fit --config eurosat_ms_lt --trainer.max_epochs=10\n"
            "  rs-metapeft fit --config eurosat_ms_lt --trainer.max_epochs=10 --ckpt_path last"),
    "validate": ("Validate a checkpoint on a recipe's validation split.",
                 "rs-metapeft validate --config demo --ckpt_path runs/demo/.../last.ckpt"),
    "test": ("Test a checkpoint on a recipe's test split and write the report.",
             "rs-metapeft test --config demo --ckpt_path last"),
    "predict": ("Class probabilities on a recipe's predict split (Lightning's predict loop).",
                "rs-metapeft predict --config demo --ckpt_path CKPT"),
}


def one_line_parse_error(message: str) -> str:
    r"""A jsonargparse error (possibly nested, multi-line) as one line naming the recipe field.

    Example:
        >>> one_line_parse_error('Parser key "model.optimizer.lr":\n  Expected a float. Got: x')
        'model.optimizer.lr: Expected a float. Got: x'
    """
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    keys = re.findall(r'Parser key "([^"]+)"', message)
    try:
        given = next((i for i, line in enumerate(lines)
                      if line.startswith("- Problem with given class_path")), None)
        if given is not None:  # a subclass's init argument, e.g. data.init_args.batch_size
            inner = re.match(r'Parser key "([^"]+)":', lines[given + 1])
            if inner:
                return f"{keys[0]}.init_args.{inner.group(1)}: {lines[given + 2]}"
            return f"{keys[0]}.init_args: {lines[given + 1]}"
        if keys:
            last = max(i for i, line in enumerate(lines) if line.startswith("Parser key"))
            return f"{keys[-1]}: {' '.join(lines[last + 1:last + 2])}".rstrip(": ")
    except IndexError:
        pass
    return " ".join(lines)



#: Model settings that belong to a run, not to the trained model: a checkpoint keeps the
#: user's value for them (``test --ckpt_path C --model.report_dir D`` reports into D).
_RUN_MODEL_SETTINGS = ("report_dir",)


class RSMetaPEFTCLI(LightningCLI):
    """LightningCLI with bands, class count and label kind linked from the data to the model.

    Runs log to TensorBoard and CSV (``metrics.csv``, drawn as training curves in report.html)
    in the same version folder unless the recipe sets ``trainer.logger``; ``fit`` records its
    wall time in the report.
    """

    def add_arguments_to_parser(self, parser) -> None:  # noqa: D102 - LightningCLI hook
        parser.link_arguments("data.bands", "model.bands", apply_on="instantiate")
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.custom_bands", "model.custom_bands", apply_on="instantiate")
        # Multi-label data make a multi-label task (sigmoid scores, losses, report).
        parser.link_arguments("data.multilabel", "model.multilabel", apply_on="instantiate")
        # Always there, so every run can be resumed: --checkpoint.every_n_train_steps=N.
        parser.add_lightning_class_args(LastCheckpoint, "checkpoint")
        parser.add_argument("--overwrite", type=bool, default=False,
                            help="replace the report of an earlier run in the report folder "
                                 "(model.report_dir); refused otherwise, before any work")

    def parse_arguments(self, parser, args) -> None:  # noqa: D102 - LightningCLI hook
        from .cli_help import FULL_HELP_FLAG, short_help

        args = list(args or [])
        if args and args[0] in _LIGHTNING_HELP:
            if FULL_HELP_FLAG in args:  # LightningCLI's own, every option
                args = [a for a in args if a != FULL_HELP_FLAG] + ["--help"]
            elif "-h" in args or "--help" in args:
                text, example = _LIGHTNING_HELP[args[0]]
                print(short_help(parser, args[0], f"{text}\n\nExample:\n  {example}"))
                raise SystemExit(0)
        super().parse_arguments(parser, args)

    def _instantiate_trainer(self, config, callbacks):
        if config.get("logger") in (None, True):
            config = {**config, "logger": default_loggers(config.get("default_root_dir"))}
        own = config.get("callbacks") or []
        own = own if isinstance(own, list) else [own]
        if config.get("enable_checkpointing") is False or any(
                isinstance(c, ModelCheckpoint) for c in own):
            # The recipe checkpoints its own way, or not at all (Lightning then refuses any
            # ModelCheckpoint), so leave ours out.
            callbacks = [c for c in callbacks if not isinstance(c, LastCheckpoint)]
        return super()._instantiate_trainer(config, callbacks)

    def _parse_ckpt_path(self) -> None:
        """Resolve ``--ckpt_path last``; refuse an unreadable checkpoint file, naming it.

        Runs before LightningCLI reads the checkpoint's hyperparameters. ``last`` is the newest
        last.ckpt of the run folder, in any version folder: Lightning's own "last" looks only in
        this run's new version folder, finds nothing there and silently starts from scratch.
        """
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else None
        path = config.get("ckpt_path") if config is not None else None
        if path == "last":
            folder = (config.get("checkpoint.dirpath") or config.get("trainer.default_root_dir")
                      or os.getcwd())
            path = find_last_checkpoint(folder)
            config["ckpt_path"] = str(path)
            verb = "resuming from" if subcommand == "fit" else "loading"
            print(f"rs-metapeft {subcommand}: {verb} {path}", file=sys.stderr)
        special = path in ("best", "hpc") or str(path).startswith("registry") or "://" in str(path)
        if path and not special:
            check_checkpoint_file(path)
        # LightningCLI replaces every model setting with the checkpoint's; where this run's
        # outputs go is this run's choice, not the training run's.
        run_settings = {key: config.get(f"model.{key}") for key in _RUN_MODEL_SETTINGS
                        } if config is not None else {}
        super()._parse_ckpt_path()
        config = self.config[subcommand] if subcommand else None
        for key, value in run_settings.items():
            if value is not None:
                config[f"model.{key}"] = value

    def _refuse_earlier_report(self) -> None:
        """Stop before training or testing when the report folder holds an earlier report."""
        from .reporting.callbacks import report_folder

        folder = report_folder(self.trainer, self.model)
        refuse_existing([folder / "report.json"], bool(self.config_init[self.subcommand].get(
            "overwrite")), flag="--overwrite (or set another model.report_dir)")

    def before_validate(self) -> None:
        """Refuse a checkpoint made for other bands or classes, before any work."""
        self._check_checkpoint("validate")

    def before_test(self) -> None:
        """Refuse a checkpoint made for other bands or classes, or an earlier report."""
        self._check_checkpoint("test")
        self._refuse_earlier_report()
        self._print_header()

    def _print_header(self) -> None:
        """Say what runs where (recipe, data folder, model, run folder, device); name the recipe."""
        from .reporting.callbacks import report_folder

        recipe = recipe_label(self.config[self.subcommand].get("config"))
        self.model.run_recipe = recipe  # the report's run identity names it
        if not self.trainer.is_global_zero:
            return
        print(run_header(self.subcommand, self.trainer, self.model, self.datamodule, recipe,
                         report_folder(self.trainer, self.model)), flush=True)

    def _check_checkpoint(self, stage: str) -> None:
        path = self.config_init[self.subcommand].get("ckpt_path")
        if not path or not Path(path).is_file():
            return  # Lightning's own message covers "best"
        from .inference import check_names

        info = read_checkpoint(path).get(METADATA_KEY, {})
        self.datamodule.prepare_data()
        self.datamodule.setup(stage)
        check_names(info.get("bands"), info.get("classes"), self.datamodule.bands,
                    self.datamodule.class_names)

    def before_fit(self) -> None:
        """Refuse to replace an earlier report (before training, not after); start the clock."""
        self._refuse_earlier_report()
        self._print_header()
        self._fit_started = time.perf_counter()

    def after_fit(self) -> None:
        """Test the trained model and write the tail-class report (skipped if fit was stopped)."""
        self.model.fit_wall_time_s = time.perf_counter() - self._fit_started
        if self.trainer.interrupted:
            return
        self.trainer.test(self.model, datamodule=self.datamodule, verbose=False)


def default_loggers(root_dir: str | None) -> list:
    """TensorBoard and CSV loggers writing into one ``lightning_logs/version_N`` folder."""
    root = root_dir or "."
    # CSV first: it warns about a non-empty folder, and it is then the first to write there.
    csv = CSVLogger(root, name="lightning_logs")
    return [csv, TensorBoardLogger(root, name="lightning_logs", version=csv.version)]


def _resolve_config_args(args: list[str]) -> list[str]:
    args = list(args)
    for i, arg in enumerate(args[:-1]):
        if arg in ("--config", "-c"):
            args[i + 1] = str(recipe_path(args[i + 1]))
    for i, arg in enumerate(args):
        if arg.startswith("--config="):
            args[i] = "--config=" + str(recipe_path(arg.split("=", 1)[1]))
    return args


def data_modules() -> list[str]:
    """Class paths of the data modules in this build (valid ``data.class_path`` values)."""
    from . import data

    return sorted(f"rs_metapeft.data.{name}" for name in dir(data)
                  if isinstance(getattr(data, name), type)
                  and issubclass(getattr(data, name), LongTailDataModule)
                  and getattr(data, name) is not LongTailDataModule)


def _check_data_class(args: list[str]) -> None:
    """Name an unknown ``data.class_path`` and list the valid ones before jsonargparse does."""
    import importlib

    import yaml

    paths = []
    for i, arg in enumerate(args):
        if arg in ("--config", "-c") and i + 1 < len(args):
            recipe = yaml.safe_load(open(args[i + 1])) or {}
            data = recipe.get("data") if isinstance(recipe, dict) else None
            if isinstance(data, dict) and isinstance(data.get("class_path"), str):
                paths.append((args[i + 1], data["class_path"]))
        elif arg.startswith("--data.class_path="):
            paths.append(("the command line", arg.split("=", 1)[1]))
    for where, class_path in paths:
        module, _, name = class_path.rpartition(".")
        try:
            found = getattr(importlib.import_module(module or "rs_metapeft.data"), name, None)
        except ImportError:
            found = None
        if found is None and f"rs_metapeft.data.{name}" not in data_modules():
            raise SystemExit(
                f"error: data.class_path {class_path!r} in {where} is not a data module of this "
                f"build; valid: {', '.join(data_modules())}"
            )


def build_cli(args: list[str] | None = None, run: bool = True) -> RSMetaPEFTCLI:
    """Build (and by default run) the CLI on ``args``; shipped recipe names work for --config."""
    quiet_console()
    args = _resolve_config_args(sys.argv[1:] if args is None else args)
    _check_data_class(args)
    # exit_on_error=False: a refused setting raises, and main() shows it as one line.
    parser_kwargs: dict = {
        name: {"description": f"{text}\n\nExample:\n  {example}", "exit_on_error": False,
               "formatter_class": _help_formatter()}
        for name, (text, example) in _LIGHTNING_HELP.items()
    }
    parser_kwargs.update(prog="rs-metapeft", exit_on_error=False)
    return RSMetaPEFTCLI(
        MetaPEFTTask,
        LongTailDataModule,
        subclass_mode_data=True,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        # The run header states the parameter counts; Lightning's table adds little (its FLOPs
        # column reads 0 for this model). A recipe can still ask for it.
        trainer_defaults={"enable_model_summary": False},
        # The task builds its own optimisers (model.optimizer, model.meta): LightningCLI's
        # --optimizer / --lr_scheduler would replace them, so they are not offered.
        auto_configure_optimizers=False,
        parser_kwargs=parser_kwargs,
        args=args,
        run=run,
    )


def _help_formatter():
    import argparse

    from jsonargparse import DefaultHelpFormatter

    class Formatter(DefaultHelpFormatter, argparse.RawDescriptionHelpFormatter):
        """Keep the line breaks of descriptions (examples stay one per line).

        An option whose help says its default in words keeps that, without jsonargparse's
        ``default: null`` beside it.
        """

        def _get_help_string(self, action) -> str:
            text = super()._get_help_string(action)
            if "(default" in (action.help or ""):
                text = text.replace(", default: %(default)s", "").replace(
                    " (default: %(default)s)", "")
            return text

    return Formatter


def _parser(name: str) -> ArgumentParser:
    description, example, _ = _SUBCOMMANDS[name]
    return ArgumentParser(prog=f"rs-metapeft {name}", description=f"{description}\n\nExample:\n  "
                          f"{example}", formatter_class=_help_formatter(), exit_on_error=True)


# -- subcommands of our own -----------------------------------------------------------------------
def _demo(argv: list[str]) -> int:
    """``demo [multispectral|sar|multilabel] [overrides]``: the offline demo recipes."""
    from .cli_help import DEMOS, demo_help

    if "-h" in argv or "--help" in argv:
        print(demo_help(_SUBCOMMANDS["demo"][0] + "\n\nExample:\n  " + _SUBCOMMANDS["demo"][1]))
        return 0
    recipe = "demo"
    if argv[:1] and not argv[0].startswith("-"):
        kinds = DEMOS
        if argv[0] not in kinds:
            raise SystemExit(f"rs-metapeft demo: unknown demo {argv[0]!r}; choose from "
                             f"{', '.join(kinds)}")
        recipe, argv = kinds[argv[0]], argv[1:]
    build_cli(["fit", "--config", str(recipe_path(recipe)), *argv])
    return 0


def _recipes(argv: list[str]) -> int:
    """``recipes list|show NAME|copy NAME DEST``."""
    parser = _parser("recipes")
    sub = parser.add_subcommands(dest="action")
    sub.add_subcommand("list", ArgumentParser(description="List the shipped recipes."))
    show = ArgumentParser(description="Print a shipped recipe.")
    show.add_argument("name", help="recipe name (see `rs-metapeft recipes list`)")
    sub.add_subcommand("show", show)
    cp = ArgumentParser(description="Copy a shipped recipe to edit it.")
    cp.add_argument("name", help="recipe name")
    cp.add_argument("dest", help="target file or folder")
    cp.add_argument("--overwrite", action="store_true", help="replace an existing file")
    sub.add_subcommand("copy", cp)
    cfg = parser.parse_args(argv)
    action = cfg.action
    try:
        if action == "list":
            import shutil
            import textwrap

            names = list_recipes()
            width = max(map(len, names)) + 2
            columns = max(shutil.get_terminal_size((100, 24)).columns, 60)
            for name in names:  # each summary whole, wrapped under its column
                lines = textwrap.wrap(recipe_summary(name), columns - width,
                                      break_on_hyphens=False) or [""]
                print(f"{name:<{width}}{lines[0]}")
                print("".join(f"{'':<{width}}{line}\n" for line in lines[1:]), end="")
        elif action == "show":
            print(recipe_path(cfg.show.name).read_text(), end="")
        else:
            target = copy_recipe(cfg.copy.name, cfg.copy.dest, cfg.copy.overwrite)
            print(f"copied {cfg.copy.name} to {target}; run it with: "
                  f"rs-metapeft fit --config {target}")
    except (FileNotFoundError, FileExistsError) as err:
        return _fail("recipes", err)
    return 0


def _report(argv: list[str]) -> int:
    """``report RUN_DIR``: rewrite report.md and report.html from report.json."""
    parser = _parser("report")
    parser.add_argument("run_dir", help="a run folder holding report.json (or a report.json)")
    cfg = parser.parse_args(argv)
    from .reporting.runs import regenerate_report

    try:
        paths = regenerate_report(cfg.run_dir)
    except (FileNotFoundError, ValueError) as err:
        return _fail("report", err)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _compare(argv: list[str]) -> int:
    """``compare RUN_A RUN_B ...``: a side-by-side table of runs."""
    parser = _parser("compare")
    parser.add_argument("runs", nargs="+", help="run folders (or report.json files)")
    parser.add_argument("--output", "-o", default="comparison",
                        help="write OUTPUT.md and OUTPUT.csv (default: ./comparison)")
    cfg = parser.parse_args(argv)
    from .reporting.compare import compare_runs, write_comparison

    try:
        table = compare_runs(cfg.runs)
    except (FileNotFoundError, ValueError) as err:
        return _fail("compare", err)
    md, csv = write_comparison(table, cfg.output)
    print(md.read_text(), end="")
    print(f"\nwritten to {md} and {csv}")
    return 0


def _prediction_parser(name: str, target: str, target_help: str) -> ArgumentParser:
    parser = _parser(name)
    parser.add_argument("checkpoint", help="a checkpoint (.ckpt), a run folder or an export folder")
    parser.add_argument(target, help=target_help)
    parser.add_argument("--batch_size", type=int, default=64, help="chips per forward pass")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing outputs (refused otherwise, before any work)")
    parser.add_argument("--weights", default=None,
                        help="an export's base weights, where its reference no longer finds "
                             "them: the weights file, or the training checkpoint or run folder")
    parser.add_argument("--allow-download", action="store_true",
                        help="let an adapter-only export of hub weights fetch them")
    parser.add_argument("--nodata", type=float, default=None,
                        help="nodata value of the input (default: the file's own, else the one "
                             "the model's training data declared)")
    return parser


def _load(cfg):
    from .inference import load_model

    return load_model(cfg.checkpoint, weights=cfg.weights, allow_download=cfg.allow_download)


def _predict_chips(argv: list[str]) -> int:
    """``predict-chips CKPT FOLDER``: classify a folder of chips into a CSV."""
    parser = _prediction_parser("predict-chips", "folder",
                                "folder of GeoTIFF chips (searched recursively)")
    parser.add_argument("--output", "-o", default="predictions.csv", help="CSV to write")
    cfg = parser.parse_args(argv)
    from .inference import predict_chips

    refuse_existing([cfg.output], cfg.overwrite)  # before loading anything
    out = predict_chips(_load(cfg), cfg.folder, cfg.output, cfg.batch_size,
                        nodata=cfg.nodata, overwrite=cfg.overwrite)
    print(f"wrote {out}")
    return 0


def _predict_scene(argv: list[str]) -> int:
    """``predict-scene CKPT SCENE.tif``: class map and confidence GeoTIFFs of a large scene.

    A multi-label model writes per-label presence and score GeoTIFFs instead.
    """
    parser = _prediction_parser("predict-scene", "scene",
                                "GeoTIFF scene with the model's bands in order")
    parser.add_argument("--output", "-o", default=None,
                        help="output prefix (default: next to the scene, SCENE_classes.tif and "
                             "SCENE_confidence.tif; multi-label: SCENE_labels.tif and "
                             "SCENE_scores.tif)")
    parser.add_argument("--stride", type=int, default=None,
                        help="scene pixels between chips (default: the footprint of the "
                             "training chips, no overlap)")
    parser.add_argument("--crs", default=None,
                        help="refuse a scene not in this CRS, e.g. EPSG:32632 (default: the CRS "
                             "of the model's training chips, where the checkpoint records one)")
    cfg = parser.parse_args(argv)
    from .inference import predict_scene
    from .inference.loading import is_multilabel_model
    from .inference.scene import scene_outputs

    outputs = scene_outputs(cfg.scene, cfg.output, is_multilabel_model(cfg.checkpoint))
    refuse_existing(outputs, cfg.overwrite)  # before loading
    first, second = predict_scene(_load(cfg), cfg.scene, cfg.output, stride=cfg.stride,
                                  batch_size=cfg.batch_size, crs=cfg.crs, nodata=cfg.nodata,
                                  overwrite=cfg.overwrite)
    print(f"wrote {first} and {second}")
    return 0


def _fail(name: str, err: Exception) -> int:
    print(f"error: rs-metapeft {name}: {_one_line(err)}", file=sys.stderr)
    return 2


def _chain(err: BaseException) -> list[BaseException]:
    """``err`` and the errors it was raised from, outermost first."""
    chain = [err]
    while (nxt := chain[-1].__cause__ or chain[-1].__context__) is not None and nxt not in chain:
        chain.append(nxt)
    return chain


def _raised_here(err: BaseException) -> bool:
    """Whether ``err`` was raised by this package's code (not by the parser wrapping it)."""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and Path(tb.tb_frame.f_code.co_filename).is_relative_to(_PACKAGE)


_PACKAGE = Path(__file__).resolve().parent


def _delegate(name: str, module: str, function: str = "main") -> Callable[[list[str]], int]:
    """Run a subcommand implemented in another module (imported only when it runs)."""

    def run(argv: list[str]) -> int:
        import importlib

        target = getattr(importlib.import_module(module), function)
        return int(target(argv) or 0)

    return run


#: Our own subcommands: (what it does, example, handler).
_SUBCOMMANDS: dict[str, tuple[str, str, Callable[[list[str]], int]]] = {}
_SUBCOMMANDS.update({
    "demo": ("Train and report on a built-in offline demo (multispectral by default, sar, or "
             "multilabel: Sentinel-1 + Sentinel-2 scenes with a long tail of labels); extra "
             "arguments override the recipe.",
             "rs-metapeft demo sar --trainer.max_epochs=2", _demo),
    "stats": ("Class counts, groups and per-band statistics of a recipe's data.",
              "rs-metapeft stats --config eurosat_ms_lt",
              _delegate("stats", "rs_metapeft.data.summary", "stats_main")),
    "report": ("Regenerate report.md and report.html of a run from its report.json.",
               "rs-metapeft report runs/demo/lightning_logs/version_0", _report),
    "compare": ("Side-by-side table of runs: overall, class-mean and group accuracy, trainable "
                "parameters, wall time; printed and written as Markdown and CSV.",
                "rs-metapeft compare runs/peft/lightning_logs/version_0 "
                "runs/metapeft/lightning_logs/version_0 -o peft_vs_meta", _compare),
    "export": ("Export a trained model's PEFT weights, gamma and data description.",
               "rs-metapeft export runs/demo/lightning_logs/version_0/checkpoints/last.ckpt",
               _delegate("export", "rs_metapeft.export.command")),
    "recipes": ("List, show or copy the shipped recipes.",
                "rs-metapeft recipes copy geotiff_folder my_recipe.yaml", _recipes),
    "backbones": ("List the usable backbones (timm ViTs, TorchGeo weights with their bands, "
                  "sensor and input size); `backbones show NAME` prints what a recipe needs.",
                  "rs-metapeft backbones show ViTSmall16_Weights.SENTINEL2_ALL_DINO",
                  _delegate("backbones", "rs_metapeft.models.catalog")),
    "predict-chips": ("Classify a folder of GeoTIFF chips with a trained model; writes a CSV "
                      "of path, class, confidence and per-class probabilities.",
                      "rs-metapeft predict-chips runs/demo/.../last.ckpt chips/ -o preds.csv",
                      _predict_chips),
    "predict-scene": ("Classify a large GeoTIFF scene chip by chip (TorchGeo GridGeoSampler); "
                      "writes a class-map and a confidence GeoTIFF on the scene's grid and CRS "
                      "(multi-label: per-label presence and score GeoTIFFs).",
                      "rs-metapeft predict-scene runs/demo/.../last.ckpt scene.tif -o out/scene",
                      _predict_scene),
})


def _overview() -> str:
    lines = ["usage: rs-metapeft SUBCOMMAND [options]   (rs-metapeft SUBCOMMAND --help for more)",
             "", "MetaPEFT fine-tuning of RGB-pretrained ViTs on multispectral and SAR imagery.",
             "", "subcommands:"]
    rows = [(n, t) for n, (t, _) in _LIGHTNING_HELP.items()]
    rows += [(n, t) for n, (t, _, _) in _SUBCOMMANDS.items()]
    width = max(len(n) for n, _ in rows)
    lines += [f"  {n:<{width}}  {t}" for n, t in rows]
    lines += ["", "examples:", "  rs-metapeft recipes list", "  rs-metapeft demo",
              "  rs-metapeft fit --config eurosat_ms_lt --print_config"]
    return "\n".join(lines)


#: Set to 1 (or pass ``--debug``) for the full traceback of an error instead of its one line.
DEBUG_ENV = "RS_METAPEFT_DEBUG"


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Errors that are the user's to fix (input, files, settings): shown as one line."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from .extras import MissingExtraError
    from .models.backbone import BackboneWeightsError

    # ValueError covers the project's own (data files, bands, checkpoints, exports, settings);
    # ArgumentError the parser's refusals (unknown keys, a value outside a Literal's choices);
    # MissingExtraError an optional dependency to install (the message names the extra).
    return (ValueError, ArgumentError, FileNotFoundError, FileExistsError, NotADirectoryError,
            IsADirectoryError, PermissionError, BackboneWeightsError, MisconfigurationException,
            MissingExtraError)


#: ``--debug`` of the command line being run (parsers consult it through :func:`_debug`).
_DEBUG_FLAG = False


def _debug() -> bool:
    return _DEBUG_FLAG or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rs-metapeft``; returns the process exit code.

    An expected error (missing or unreadable file, band or class mismatch, bad setting, weights
    not found) prints ``error: <message>`` on stderr and returns 2; ``--debug`` anywhere on the
    command line, or ``RS_METAPEFT_DEBUG=1``, shows the traceback instead.
    """
    global _DEBUG_FLAG
    argv = list(sys.argv[1:] if argv is None else argv)
    _DEBUG_FLAG = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    quiet_console()
    try:
        return _run(argv)
    except _expected_errors() as err:
        if _debug():
            raise
        print(f"error: {_one_line(err)}  (--debug for the traceback)", file=sys.stderr)
        return 2
    finally:
        _DEBUG_FLAG = False


#: jsonargparse's refusal of a value outside a ``Literal``'s choices (possibly nested).
_LITERAL_REFUSAL = re.compile(r"Expected a typing\.Literal(\[.*?\])\. Got value: (.*)")


def _one_line(err: BaseException) -> str:
    """The error's message on one line; a refused choice as ``key must be one of ..., got ...``.

    jsonargparse wraps an error raised while building the data module (a missing root, a bad
    CSV row) in its union-type report, which buries the message: the package's own error in
    the chain is shown instead; a refusal of the parser's own becomes the field it names.
    """
    ours = next((e for e in _chain(err) if _raised_here(e)), None)
    if ours is not None and ours is not err and not isinstance(ours, ArgumentError):
        err = ours
    text = str(err)
    refused = _LITERAL_REFUSAL.search(text)
    if isinstance(err, ArgumentError) and refused:
        keys = re.findall(r'Parser key "([^"]+)"', text[:refused.start()])
        choices = ", ".join(map(str, ast.literal_eval(refused.group(1))))
        return f"{'.'.join(keys)} must be one of {choices}, got {refused.group(2).strip()!r}"
    if isinstance(err, ArgumentError):  # the field it names, not the parser's nested report
        return one_line_parse_error(text)
    return " ".join(text.split()) or type(err).__name__


def _run(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(_overview())
        return 0
    if argv[0] in _SUBCOMMANDS:
        return _SUBCOMMANDS[argv[0]][2](argv[1:])
    build_cli(argv)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
