import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .factory import assert_same

SCRIPT = Path(__file__).with_name("tiny_run.py")
REPO = Path(__file__).resolve().parents[2]


def _run(root, out, *args, check=True):
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(SCRIPT), str(root), str(out), *args], env=env,
                          capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"rc={proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def _losses(out):
    return [json.loads(line) for line in (out / "losses.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_a_sigkilled_run_resumes_to_the_uninterrupted_result(tiny_s2_root, tmp_path):
    # 4 batches per epoch: killed in epoch 0 after step 2, resumed across the epoch boundary.
    full, cut = tmp_path / "full", tmp_path / "cut"
    _run(tiny_s2_root, full, "--steps", "7")
    killed = _run(tiny_s2_root, cut, "--steps", "7", "--kill-at", "3", check=False)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not (cut / "final_rank0.pt").exists()
    _run(tiny_s2_root, cut, "--steps", "7", "--resume")
    a, b = torch.load(full / "final_rank0.pt"), torch.load(cut / "final_rank0.pt")
    assert a["outer_steps"] == b["outer_steps"] == 3
    assert_same(a["model"], b["model"])
    assert_same(a["optimizer"]["state"], b["optimizer"]["state"])
    steps = {r["step"]: r for r in _losses(full)}
    resumed = _losses(cut)
    assert [r["step"] for r in resumed] == [1, 2, 3, 4, 5, 6, 7]
    for r in resumed:
        assert r == steps[r["step"]]  # same batches, same losses, bit for bit
    assert (cut / "gamma_heatmap.png").exists() and (cut / "gamma_history.png").exists()


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_keeps_gamma_and_weights_in_sync(tiny_s2_root, tmp_path):
    _run(tiny_s2_root, tmp_path, "--steps", "4", "--devices", "2")
    r0 = torch.load(tmp_path / "final_rank0.pt")
    r1 = torch.load(tmp_path / "final_rank1.pt")
    assert r0["outer_steps"] == r1["outer_steps"] == 2
    assert_same(r0["model"], r1["model"])
    gammas = [v for k, v in r0["model"].items() if k.endswith("gamma")]
    assert gammas and any(not torch.all(g == 1) for g in gammas)
