"""What the command line prints: a run header saying where data and runs go, and nothing else.

Third-party lines that tell a user nothing they can act on are dropped here, each one named:
the start of its text, its category and the module that emits it. Nothing else is silenced, so a
warning this list does not name still shows. :func:`quiet_console` installs the filters; the
command line calls it once per call (:func:`rs_metapeft.cli.main`,
:func:`rs_metapeft.cli.build_cli`).
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

__all__ = [
    "QUIET_LOG_LINES",
    "QUIET_WARNINGS",
    "quiet_console",
    "recipe_label",
    "run_header",
    "short_count",
]

#: Warnings dropped: (message regex, category, emitting module regex, why).
QUIET_WARNINGS: tuple[tuple[str, type[Warning], str, str], ...] = (
    (r"LightningCLI's args parameter is intended to run from within Python",
     UserWarning, r"lightning\.pytorch\.cli$",
     "the command line hands LightningCLI its own arguments (recipe names resolved to files); "
     "there is no second command line to mix them up with"),
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated",
     FutureWarning, r"lightning\.pytorch\.utilities\._pytree$",
     "a torch deprecation inside Lightning's own code; nothing a user can change"),
    (r"The number of training batches \(\d+\) is smaller than the logging interval",
     UserWarning, r"lightning\.pytorch\.loops\.fit_loop$",
     "Lightning counts the logging interval across epochs, so the loss is still logged every "
     "trainer.log_every_n_steps steps; report.html says how many points its curves have"),
)

#: Lightning's log lines (INFO) dropped: (start of the line, why).
QUIET_LOG_LINES: tuple[tuple[str, str], ...] = (
    ("💡 Tip:", "advertisements for Lightning's cloud services"),
    ("GPU available:", "the run header names the device the run uses"),
    ("TPU available:", "the run header names the device the run uses"),
    ("HPU available:", "the run header names the device the run uses"),
    ("Seed set to", "the recipe's seed_everything (--print_config shows it)"),
    ("Loading `train_dataloader` to estimate number of stepping batches",
     "an internal step of Lightning's"),
)

#: Loggers Lightning writes those lines through (the records are filtered where they are made,
#: and again at Lightning's own handlers).
_LIGHTNING_LOGGERS = ("lightning.pytorch.utilities.rank_zero",
                      "lightning.fabric.utilities.rank_zero", "lightning.fabric.utilities.seed",
                      "lightning.pytorch.trainer.trainer")
_HANDLER_LOGGERS = ("lightning.pytorch", "lightning.fabric")


class _DropNamedLines(logging.Filter):
    """Drop the log records whose message starts with one of :data:`QUIET_LOG_LINES`."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is someone else's to report
            return True
        return not message.startswith(tuple(start for start, _ in QUIET_LOG_LINES))


_FILTER = _DropNamedLines()
_PACKAGE = Path(__file__).resolve().parent
_SHOW_WARNING = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Show this package's own warnings as one ``Warning: ...`` line (they name the fix).

    Python's format adds the file, line and source line, which tell a user of the command line
    nothing; any other warning keeps it.
    """
    try:
        ours = Path(filename).resolve().is_relative_to(_PACKAGE)
    except (TypeError, ValueError, OSError):
        ours = False
    if not ours:
        _SHOW_WARNING(message, category, filename, lineno, file, line)
        return
    stream = file if file is not None else sys.stderr
    try:
        stream.write(f"Warning: {message}\n")
    except (AttributeError, OSError):  # a closed or missing stream, as Python's own tolerates
        pass


def quiet_console() -> None:
    """Install the named warning and log-line filters (idempotent).

    Also shows this package's own warnings as one ``Warning: ...`` line each.
    """
    for message, category, module, _ in QUIET_WARNINGS:
        # An identical filter is replaced, not added again.
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    for name in _LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for name in _HANDLER_LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
    if warnings.showwarning is _SHOW_WARNING:  # not replaced by someone else meanwhile
        warnings.showwarning = _show_warning


def short_count(n: int) -> str:
    """A parameter count in the short form of Lightning's summaries.

    Example:
        >>> short_count(966_123), short_count(35_774), short_count(86_000_000), short_count(512)
        ('966 K', '35.8 K', '86.0 M', '512')
    """
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value >= 100 else f"{value:.1f} {unit}"
    return str(n)


def _where(path: Any) -> str:
    """A path as the user would type it: relative to the working folder when under it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return str(path)


def recipe_label(config_paths: Any) -> str | None:
    """The recipe of a run as the user knows it: a shipped recipe's name, else its file.

    Args:
        config_paths: the ``--config`` value(s); the last one given names the run.
    """
    from .recipes import RECIPES_DIR

    paths = config_paths if isinstance(config_paths, list | tuple) else [config_paths]
    paths = [str(p) for p in paths if p]
    if not paths:
        return None
    path = Path(paths[-1])
    if path.resolve().parent == RECIPES_DIR.resolve():
        return f"{path.stem} (shipped)"
    return _where(path)


def _device(trainer: Any) -> str:
    kind = type(trainer.accelerator).__name__.removesuffix("Accelerator").lower() or "?"
    kind = {"cuda": "GPU", "mps": "Apple GPU"}.get(kind, kind)
    n = getattr(trainer, "num_devices", 1)
    devices = f"{n} x {kind}" if n > 1 else kind
    precision = str(trainer.precision)
    return devices if precision == "32-true" else f"{devices}, precision {precision}"


def run_header(command: str, trainer: Any, task: Any, datamodule: Any,
               config_paths: Any = None, run_folder: str | os.PathLike | None = None) -> str:
    """The lines a training or test command prints first: recipe, data, model, run folder.

    Args:
        command: the subcommand (``fit``, ``test`` ...).
        trainer: the Lightning trainer (device and precision).
        task: the :class:`~rs_metapeft.tasks.MetaPEFTTask` (backbone, weights, parameters).
        datamodule: the data module (its ``root``, bands and classes).
        config_paths: the recipe file(s) given with ``--config``, or its label.
        run_folder: where checkpoints, logs and the report go.
    """
    lines = [f"rs-metapeft {command}"]
    recipe = config_paths if isinstance(config_paths, str) else recipe_label(config_paths)
    if recipe:
        lines[0] += f": recipe {recipe}"
    rows = []
    root = getattr(datamodule, "root", None)
    if datamodule is not None:
        bands = list(getattr(datamodule, "bands", None) or [])
        what = [type(datamodule).__name__]
        if bands:
            what.append(f"{len(bands)} band{'s' * (len(bands) != 1)} ({', '.join(bands)})"
                        if len(bands) <= 4 else f"{len(bands)} bands ({bands[0]} ... {bands[-1]})")
        if getattr(datamodule, "num_classes", None):
            what.append(f"{datamodule.num_classes} classes")
        where = _where(root) if root else "the dataset's default folder"
        if hasattr(datamodule, "spec") and hasattr(datamodule, "generate"):
            where += " (synthetic)"
        rows.append(("data", f"{where}: {'; '.join(what)}"))
    hp = getattr(task, "hparams", {}) or {}
    if task is not None and hasattr(task, "parameters"):
        total = sum(p.numel() for p in task.parameters())
        trainable = sum(p.numel() for p in task.parameters() if p.requires_grad)
        share = f" ({100 * trainable / total:.1f} %)" if total else ""
        weights = hp.get("weights") or "random init"
        backbone = hp.get("backbone", type(task).__name__)
        rows.append(("model", f"{backbone}, {weights}; {short_count(total)} parameters, "
                              f"{short_count(trainable)} trainable{share}"))
    if run_folder is not None:
        rows.append(("run", f"{_where(run_folder)} (checkpoints, logs, report) on "
                            f"{_device(trainer)}"))
    width = max((len(k) for k, _ in rows), default=0)
    return "\n".join(lines + [f"  {k + ':':<{width + 1}} {v}" for k, v in rows])
