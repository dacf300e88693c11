"""Python API for notebooks and scripts: the same code paths as the command line.

The examples run offline, in order: :func:`fit` trains a CPU-sized twin of the demo recipe and
keeps its run folder in ``run``, which the later examples use.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml

from .bands import check_compatible
from .cli import build_cli, default_loggers
from .io import refuse_existing
from .recipes import recipe_path

__all__ = ["evaluate", "fit", "load_model", "load_recipe", "predict"]

Recipe = str | os.PathLike | dict


def load_recipe(name_or_path: str | os.PathLike) -> dict:
    """Read a recipe (a path or a shipped recipe's name) as a dict.

    Example:
        >>> recipe = load_recipe("demo")
        >>> recipe["data"]["class_path"]
        'rs_metapeft.data.SyntheticEuroSATDataModule'

    """
    with open(recipe_path(str(name_or_path))) as f:
        return yaml.safe_load(f)


def _recipe_file(recipe: Recipe, folder: str) -> str:
    if isinstance(recipe, dict):
        path = Path(folder) / "recipe.yaml"
        path.write_text(yaml.safe_dump(recipe))
        return str(path)
    return str(recipe_path(recipe))


def _override_args(overrides: dict[str, Any] | None) -> list[str]:
    args = []
    for key, value in (overrides or {}).items():
        text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
        args.append(f"--{key}={text}")
    return args


def fit(recipe: Recipe, overrides: dict[str, Any] | None = None, verbose: bool = True) -> dict:
    """Train with a recipe, test, and return the tail-class report.

    Args:
        recipe: a recipe path, a shipped recipe's name (e.g. ``"demo"``) or a recipe dict.
        overrides: dotted keys and values, e.g. ``{"trainer.max_steps": 20}``.
        verbose: print where the data and the run go, and the report's summary (Lightning's
            own notices go to the log either way).

    Returns:
        The report dict (overall, class-mean and group accuracy, macro-F1, per-class rows,
        learned gamma, fit wall time); ``report["path"]`` is the run folder with report.json,
        report.md, report.html, the CSV and TensorBoard logs and the checkpoint. With
        multi-label data (``report["task"] == "multilabel"``, e.g. the ``demo_multilabel``
        recipe) it is the label-tail report instead of accuracies: micro and macro mAP and F1,
        ``group_map`` and ``group_f1`` by label frequency, per-label AP with training
        frequency, and the test split's label co-occurrence
        (:mod:`rs_metapeft.reporting.multilabel`).

    Example:
        >>> import tempfile
        >>> from rs_metapeft.recipes import shrink_recipe
        >>> tmp = tempfile.mkdtemp()
        >>> data = {"root": f"{tmp}/data", "num_classes": 4, "max_per_class": 20,
        ...         "val_per_class": 2, "test_per_class": 3, "image_size": 32}
        >>> twin = shrink_recipe(load_recipe("demo"), f"{tmp}/runs", data=data)
        >>> report = fit(twin, {"trainer.enable_progress_bar": False}, verbose=False)
        >>> sorted(report["group_accuracy"])
        ['few', 'many', 'medium']
        >>> run = report["path"]

    """
    with tempfile.TemporaryDirectory() as folder:
        args = ["fit", "--config", _recipe_file(recipe, folder), *_override_args(overrides)]
        sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
        with sink:
            cli = build_cli(args)
    if cli.model.last_report is None:
        raise RuntimeError("training stopped before the test report was written")
    return cli.model.last_report


def load_model(source: str | os.PathLike, device: str = "cpu", weights: str | None = None,
               allow_download: bool = False):
    """Load a trained model; :func:`rs_metapeft.inference.load_model` under its public name.

    Args:
        source: a run folder, a ``.ckpt`` file or an ``rs-metapeft export`` folder.
        device: where the model goes.
        weights: for an export without its backbone, the base weights to load under it where
            its reference no longer finds them: the weights file, or the training checkpoint
            (or run folder).
        allow_download: for an adapter-only export of hub weights, fetch them (never by default).

    Returns:
        The task in eval mode, with ``class_names`` and ``model.bands``.

    Example (``run`` is the folder from the :func:`fit` example):
        >>> model = load_model(run)
        >>> model.class_names
        ['AnnualCrop', 'Forest', 'HerbaceousVegetation', 'Highway']
        >>> len(model.model.bands)
        13

    """
    from .inference import load_model as load

    return load(source, device, weights, allow_download)


def evaluate(model: Any, recipe: Recipe, overrides: dict[str, Any] | None = None,
             output: str | os.PathLike | None = None, verbose: bool = True,
             overwrite: bool = False) -> dict:
    """Test a trained model on a recipe's test split and return the report.

    The recipe's data must have the model's bands and classes (same names, same order);
    otherwise the model is refused with the difference spelled out before any work.

    Args:
        model: a loaded model (:func:`load_model`), a run folder or a checkpoint.
        recipe: a recipe path, name or dict; only its ``data`` section is used.
        overrides: dotted keys for the recipe, e.g. ``{"data.init_args.batch_size": 16}``.
        output: folder for report.json/.md/.html (default: a version folder under
            ``./runs/evaluate``).
        verbose: print the report.
        overwrite: replace a report already in ``output`` (otherwise it is refused before
            any work, as the CLI's ``test --overwrite`` does).

    Returns:
        The report dict.

    Raises:
        FileExistsError: ``output`` already holds a report and ``overwrite`` is false.

    Example (``run`` and ``twin`` come from the :func:`fit` example):
        >>> report = evaluate(run, twin, output=f"{tmp}/evaluation", verbose=False)
        >>> report["num_test_images"]
        12

    """
    import lightning as L

    from .data.datamodules import build_datamodule
    from .inference import check_matches

    if output is not None:
        refuse_existing([Path(output) / "report.json"], overwrite, flag="overwrite=True")
    task = model if isinstance(model, torch.nn.Module) else load_model(model)
    data_cfg = _data_section(recipe, overrides)
    dm = build_datamodule(data_cfg)
    dm.prepare_data()
    dm.setup("test")
    check_matches(task, bands=dm.bands, classes=dm.class_names)
    root = Path(output) if output is not None else Path("runs") / "evaluate"
    trainer = L.Trainer(logger=default_loggers(str(root)), enable_checkpointing=False,
                        enable_progress_bar=verbose, enable_model_summary=False,
                        accelerator="auto", devices=1)
    if output is not None:
        task.report_dir = str(output)
    sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with sink:
        trainer.test(task, datamodule=dm, verbose=False)
    return task.last_report


def _data_section(recipe: Recipe, overrides: dict[str, Any] | None) -> dict:
    config = recipe if isinstance(recipe, dict) else load_recipe(recipe)
    data = yaml.safe_load(yaml.safe_dump(config.get("data") or {}))
    for key, value in (overrides or {}).items():
        parts = key.split(".")
        if parts[0] != "data":
            continue
        node = data
        for part in parts[1:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return data


def predict(model: Any, inputs: str | os.PathLike | torch.Tensor,
            output: str | os.PathLike | None = None, **kwargs: Any):
    """Predict classes of a chip folder, a GeoTIFF scene, or a tensor of chips.

    Args:
        model: a loaded model (:func:`load_model`), a run folder or a checkpoint.
        inputs: a folder of GeoTIFF chips (writes a CSV of path, class, confidence and class
            probabilities), a GeoTIFF scene (writes class-map and confidence GeoTIFFs on the
            scene's grid), or a (N, bands, H, W) tensor of raw band values (converted to dB
            where training converted its SAR data, ``data.preprocessing``).
        output: the CSV path or the scene outputs' prefix (defaults next to the input).
        **kwargs: more options of :func:`~rs_metapeft.inference.predict_chips` or
            :func:`~rs_metapeft.inference.predict_scene` (``batch_size``, ``stride``, ``crs``).

    Returns:
        The CSV path; the (class map, confidence) paths; or a (N, classes) probability tensor
        (a multi-label model: per-label sigmoid scores, a CSV of label sets and scores, and the
        scene's (label presence, scores) paths, one band per label).

    Example (``run`` and ``tmp`` come from the :func:`fit` example):
        >>> import csv, os
        >>> folder = f"{tmp}/data/ds/images/remote_sensing/otherDatasets/sentinel_2/tif/Forest"
        >>> table = predict(run, folder, f"{tmp}/forest.csv", progress=False)
        >>> rows = list(csv.DictReader(open(table)))
        >>> len(rows) == len(os.listdir(folder))
        True
        >>> list(rows[0])  # doctest: +NORMALIZE_WHITESPACE
        ['path', 'class', 'confidence', 'AnnualCrop', 'Forest', 'HerbaceousVegetation', 'Highway',
         'all_nodata']
        >>> predict(run, torch.zeros(2, 13, 32, 32)).shape
        torch.Size([2, 4])

    """
    from .inference import predict_chips, predict_scene
    from .inference.nodata import model_input, recorded_preprocessing

    task = model if isinstance(model, torch.nn.Module) else load_model(model)
    if isinstance(inputs, torch.Tensor):
        shape = f"a (N, {len(task.model.bands)}, H, W) tensor of bands {task.model.bands}"
        if inputs.ndim != 4:
            raise ValueError(f"expected {shape}, got shape {tuple(inputs.shape)}")
        check_compatible(task.model.bands, inputs.shape[1],
                         data=f"the tensor of shape {tuple(inputs.shape)}", fix=f"give {shape}")
        preprocessing = recorded_preprocessing(task)
        if preprocessing is not None:
            inputs = model_input(inputs.cpu(), None, task.model.normalizer.mean.cpu(),
                                 preprocessing)
        with torch.no_grad():
            return task.scores(inputs.to(task.device)).cpu()
    path = Path(inputs)
    if path.is_dir():
        target = output if output is not None else path.with_name(path.name + "_predictions.csv")
        return predict_chips(task, path, target, **kwargs)
    if path.suffix.lower() in (".tif", ".tiff"):
        return predict_scene(task, path, output, **kwargs)
    raise FileNotFoundError(f"{path} is neither a folder of chips nor a GeoTIFF scene")
