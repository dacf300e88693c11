"""Exact resume through the entry point: ``rs-metapeft fit``, SIGKILL, ``--ckpt_path last``.

Each run is a subprocess of the real console script on a tiny twin of the demo recipe, with
dropout, augmentation and validation on. A run killed in mid-epoch and resumed from the newest
``last.ckpt`` must end exactly where an uninterrupted run ends: every tensor and value of the
final checkpoint (weights, both optimisers, schedule, gamma and its history, loops, loader and
meta-sampler positions, random-number states) and every metric logged after the resume point.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from rs_metapeft.api import load_recipe

from .conftest import tiny_twin

REPO = Path(__file__).resolve().parents[1]
# 4 batches an epoch: saved at step 6 (epoch 1), killed before step 7, resumed across epoch 2.
STEPS, EVERY, KILL_AT = 10, 2, 7


def _command() -> list[str]:
    script = Path(sys.executable).with_name("rs-metapeft")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "rs_metapeft.cli"]


def _fit(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([*_command(), "fit", "--config", str(recipe), *args], env=env,
                          capture_output=True, text=True, timeout=900)


def _recipe(folder: Path, data_root: Path, meta: bool, workers: int,
            kill_at: int | None = None) -> Path:
    twin = tiny_twin(load_recipe("demo"), folder / "runs", data_root, num_workers=workers)
    twin["trainer"].update(max_steps=STEPS, max_epochs=10, enable_model_summary=False)
    if kill_at is not None:
        twin["trainer"]["callbacks"] = [{"class_path": "tests.tasks.sigkill.KillAtStep",
                                         "init_args": {"step": kill_at}}]
    twin["model"]["peft"]["dropout"] = 0.1
    twin["model"]["meta"].update(enabled=meta, every_n_steps=2, warmup_steps=1)
    twin["checkpoint"] = {"every_n_train_steps": EVERY}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ("recipe_kill.yaml" if kill_at is not None else "recipe.yaml")
    path.write_text(yaml.safe_dump(twin))
    return path


def _leaves(obj, prefix=""):
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _leaves(value, f"{prefix}/{key}")
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            yield from _leaves(value, f"{prefix}/{i}")
    else:
        yield prefix, obj


#: What must be equal: everything the run computed or will continue from.
COMPARED = ("global_step", "epoch", "state_dict", "optimizer_states", "lr_schedulers", "loops",
            "rs_metapeft", "SyntheticEuroSATDataModule")


def differences(a: dict, b: dict) -> tuple[list[str], list[str]]:
    """Paths of the tensors and of the other values that differ between two checkpoints."""
    left = dict(_leaves({k: a.get(k) for k in COMPARED}))
    right = dict(_leaves({k: b.get(k) for k in COMPARED}))
    tensors, values = [], []
    for key in sorted(left.keys() | right.keys()):
        x, y = left.get(key), right.get(key)
        if torch.is_tensor(x) or torch.is_tensor(y):
            same = torch.is_tensor(x) and torch.is_tensor(y) and x.shape == y.shape and bool(
                torch.equal(x, y))
            if not same:
                tensors.append(key)
        elif x != y and not (x != x and y != y):  # NaN equals NaN here
            values.append(key)
    return tensors, values


def _metrics(version: Path, first_step: int) -> list[dict]:
    with open(version / "metrics.csv") as f:
        rows = [{k: v for k, v in r.items() if v != ""} for r in csv.DictReader(f)]
    return [r for r in rows if int(r["step"]) >= first_step]


def _last(run_root: Path) -> Path:
    return max(run_root.rglob("last.ckpt"), key=lambda p: p.stat().st_mtime_ns)


@pytest.mark.slow
@pytest.mark.parametrize(("meta", "workers"), [(True, 0), (False, 2)],
                         ids=["meta", "no_meta-2_workers"])
def test_sigkilled_cli_run_resumes_bit_for_bit_with_ckpt_path_last(meta, workers, tiny_s2_root,
                                                                   tmp_path):
    # With workers the loader's workers are persistent: resumed in the second epoch, they start
    # in another epoch than the uninterrupted run's.
    full, cut = tmp_path / "full", tmp_path / "cut"
    done = _fit(_recipe(full, tiny_s2_root, meta, workers))
    assert done.returncode == 0, done.stderr[-3000:]
    killed = _fit(_recipe(cut, tiny_s2_root, meta, workers, kill_at=KILL_AT))
    assert killed.returncode == -9, killed.stderr[-3000:]
    (saved,) = (cut / "runs").rglob("last.ckpt")
    assert torch.load(saved, weights_only=True)["global_step"] == KILL_AT // EVERY * EVERY
    resumed = _fit(_recipe(cut, tiny_s2_root, meta, workers), "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {saved}" in resumed.stderr

    a = torch.load(_last(full / "runs"), weights_only=True)
    b = torch.load(_last(cut / "runs"), weights_only=True)
    assert a["global_step"] == STEPS
    assert (a["rs_metapeft"]["outer_steps"] > 0) == meta
    tensors, values = differences(a, b)
    assert tensors == [] and values == []
    resume_step = KILL_AT // EVERY * EVERY
    logged = _metrics(_last(full / "runs").parents[1], resume_step)
    again = _metrics(_last(cut / "runs").parents[1], resume_step)
    # The row of the first resumed step also holds what the step before it logged after its
    # optimiser step (meta/, gamma/), which the killed run never wrote: compare its loss only.
    assert [r["train/loss"] for r in logged if int(r["step"]) == resume_step] == [
        r["train/loss"] for r in again if int(r["step"]) == resume_step]
    later = [r for r in logged if int(r["step"]) > resume_step]
    assert any("train/loss" in r for r in later) and any("test/acc" in r for r in later)
    assert [r for r in again if int(r["step"]) > resume_step] == later
