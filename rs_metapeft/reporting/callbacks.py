"""Lightning callbacks that write a run's report and gamma plots (the task only trains).

:class:`~rs_metapeft.tasks.MetaPEFTTask` returns both from ``configure_callbacks``, so a plain
``Trainer``, ``rs-metapeft fit`` / ``test`` and ``rs-metapeft demo`` all write the same files: the
report when a test epoch ends, the plots when fit ends, into ``model.report_dir`` or else the
run's log folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np

from ..data.longtail import GROUPS
from ..peft import (
    effective_scale_map,
    gamma_map,
    gamma_parameters,
    initial_scale_map,
    switched_off,
)
from .identity import run_identity
from .metrics import build_report
from .multilabel import build_multilabel_report
from .tables import format_console_summary, write_report

__all__ = ["GammaPlots", "TailReport", "multilabel_task_report", "report_folder", "task_report"]


def report_folder(trainer: L.Trainer, task: Any) -> Path:
    """Where a run's report and plots go: ``report_dir``, else the log folder, else the root."""
    return Path(getattr(task, "report_dir", None) or trainer.log_dir or trainer.default_root_dir)


def _relative(path: Path) -> Path:
    """``path`` relative to the working folder when it lies under it (as the user typed it)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def _str_keys(gmap: dict[int, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {str(k): dict(v) for k, v in gmap.items()}


def task_report(task: Any, confusion: np.ndarray, meta_protocol: str | None = None) -> dict:
    """The tail-class report of a trained task from its test confusion matrix.

    Args:
        task: a :class:`~rs_metapeft.tasks.MetaPEFTTask`.
        confusion: (classes, classes) test confusion matrix, rows the true class.
        meta_protocol: the datamodule's ``meta_protocol`` (recorded in ``report["meta"]``).

    Returns:
        :func:`~rs_metapeft.reporting.build_report`'s dict plus gamma, effective scales, the
        switched-off modules, gamma history, meta settings, parameter counts and fit wall time.
    """
    g = task.groups_config
    report = build_report(confusion, task.class_names, task.group_counts, g.rule,
                          g.many_threshold, g.few_threshold)
    return {**report, **run_details(task, meta_protocol)}


def multilabel_task_report(task: Any, scores: Any, targets: Any,
                           meta_protocol: str | None = None) -> dict:
    """The label-tail report of a trained multi-label task from its test scores.

    Args:
        task: a multi-label :class:`~rs_metapeft.tasks.MetaPEFTTask`.
        scores: (N, K) test scores.
        targets: (N, K) multi-hot test labels.
        meta_protocol: the datamodule's ``meta_protocol``.

    Returns:
        :func:`~rs_metapeft.reporting.multilabel.build_multilabel_report`'s dict plus what
        :func:`task_report` adds (gamma, meta settings, parameters, wall time) and how the
        thresholds were chosen.
    """
    g = task.groups_config
    report = build_multilabel_report(scores, targets, task.thresholds, task.class_names,
                                     task.group_counts, task.train_samples, g.rule,
                                     g.many_threshold, g.few_threshold)
    report["thresholds_source"] = task.thresholds_source
    return {**report, **run_details(task, meta_protocol)}


def run_details(task: Any, meta_protocol: str | None = None) -> dict:
    """What every report holds beside its metrics.

    Gamma, effective scales, switched-off modules, meta settings, parameter counts, fit wall
    time and the run's warnings.
    """
    report: dict[str, Any] = {}
    model, mc = task.model, task.meta_config
    scales, initial = effective_scale_map(model), initial_scale_map(model)
    report["gamma"] = _str_keys(gamma_map(model))
    report["effective_scale"] = _str_keys(scales)
    report["initial_scale"] = _str_keys(initial)
    report["switch_off_threshold"] = mc.off_threshold
    report["switched_off"] = switched_off(scales, initial, mc.off_threshold)
    report["gamma_history"] = [[s, _str_keys(gm)] for s, gm in task.gamma_history]
    report["meta"] = {"enabled": mc.enabled, "outer_steps": task.outer_steps,
                      "skipped_outer_steps": task.skipped_outer_steps,
                      "hypergradient": mc.hypergradient, "lookahead_rule": mc.lookahead_rule,
                      "optimizer": mc.optimizer, "gamma_param": task.peft_config.gamma_param,
                      "protocol": meta_protocol}
    report["trainable_parameters"] = sum(
        p.numel() for p in model.parameters() if p.requires_grad
    )
    report["gamma_parameters"] = sum(p.numel() for p in gamma_parameters(model).values())
    # Set by the CLI around fit (None when only testing); `rs-metapeft compare` shows it.
    report["fit_wall_time_s"] = getattr(task, "fit_wall_time_s", None)
    # What the run did differently from what the recipe asked; the report shows them first.
    report["warnings"] = list(getattr(task, "run_warnings", []))
    # Which run this is (top of report.html; `rs-metapeft compare` checks data and bands).
    trainer = getattr(task, "_trainer", None)
    report["run"] = run_identity(task, getattr(trainer, "datamodule", None),
                                 getattr(task, "run_recipe", None))
    # How long the fit was and how often it logged (what the training curves can show).
    report["training"] = getattr(task, "fit_info", None)
    return report


class TailReport(L.Callback):
    """After each test epoch: build the report, log its headline metrics, write and print it.

    The report is also kept as ``task.last_report`` (what :func:`rs_metapeft.fit` returns).
    When a fit ends, its length and logging interval are kept as ``task.fit_info`` (the
    report's ``training``).
    """

    def on_fit_end(self, trainer: L.Trainer, pl_module: Any) -> None:  # noqa: D102 - Lightning hook
        pl_module.fit_info = {"steps": int(trainer.global_step),
                              "epochs": int(trainer.current_epoch),
                              "log_every_n_steps": int(trainer.log_every_n_steps)}

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: Any) -> None:  # noqa: D102 - Lightning hook
        protocol = getattr(trainer.datamodule, "meta_protocol", None)
        if getattr(pl_module, "multilabel", False):
            report = self._multilabel(pl_module, protocol)
        else:
            confusion = pl_module.test_confmat.compute().cpu().numpy()
            pl_module.test_confmat.reset()
            report = task_report(pl_module, confusion, protocol)
            pl_module.log("test/acc", report["overall_accuracy"])
            pl_module.log("test/class_mean_acc", report["class_mean_accuracy"])
            pl_module.log("test/macro_f1", report["macro_f1"])
            for group in GROUPS:
                if report["group_accuracy"][group] is not None:
                    pl_module.log(f"test/{group}_acc", report["group_accuracy"][group])
        pl_module.last_report = report
        if trainer.is_global_zero:
            json_path, _ = write_report(report, report_folder(trainer, pl_module))
            report["path"] = str(json_path.parent)
            print("\n" + format_console_summary(report, _relative(json_path.parent)), flush=True)


    @staticmethod
    def _multilabel(pl_module: Any, protocol: str | None) -> dict:
        scores, targets = pl_module.test_scores.compute(), pl_module.test_targets.compute()
        pl_module.test_scores.reset()
        pl_module.test_targets.reset()
        report = multilabel_task_report(pl_module, scores, targets, protocol)
        for key in ("macro_map", "micro_map", "macro_f1", "micro_f1"):
            if report[key] is not None:
                pl_module.log(f"test/{key.replace('_map', '_mAP')}", report[key])
        for group in GROUPS:
            if report["group_map"][group] is not None:
                pl_module.log(f"test/{group}_mAP", report["group_map"][group])
        return report


class GammaPlots(L.Callback):
    """When fit ends (main process, after outer steps): gamma, gamma-over-time, effective scale."""

    def on_fit_end(self, trainer: L.Trainer, pl_module: Any) -> None:  # noqa: D102 - Lightning hook
        if not pl_module.gamma_history or not trainer.is_global_zero:
            return
        from .gamma_plots import save_gamma_plots

        model = pl_module.model
        save_gamma_plots(gamma_map(model), pl_module.gamma_history,
                         report_folder(trainer, pl_module), depth=model.depth,
                         scales=effective_scale_map(model), initial=initial_scale_map(model),
                         threshold=pl_module.meta_config.off_threshold)
