"""Expected errors on the command line: one line ``error: <message>`` naming the file, exit 2."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rs_metapeft.checkpointing import CheckpointReadError
from rs_metapeft.cli import DEBUG_ENV, main
from rs_metapeft.inference import find_checkpoint

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def truncated(trained_run, tmp_path) -> Path:
    data = find_checkpoint(trained_run).read_bytes()
    path = tmp_path / "half.ckpt"
    path.write_bytes(data[: len(data) // 2])  # what a run killed while writing would leave
    return path


def _error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines, "nothing on stderr"
    assert not any("Traceback" in line for line in lines)
    return lines[-1]


@pytest.mark.parametrize("subcommand", ["test", "fit"])
def test_truncated_checkpoint_is_one_line_naming_the_file(subcommand, trained_run, truncated,
                                                         capsys):
    config = str(trained_run / "config.yaml")
    assert main([subcommand, "--config", config, "--ckpt_path", str(truncated)]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"error: cannot read checkpoint {truncated}")
    assert "PytorchStreamReader" not in line


def test_predict_chips_names_a_truncated_checkpoint(truncated, tiny_s2_root, tmp_path, capsys):
    assert main(["predict-chips", str(truncated), str(tiny_s2_root), "-o",
                 str(tmp_path / "p.csv")]) == 2
    assert f"cannot read checkpoint {truncated}" in _error_line(capsys)


def test_unreadable_chip_is_named(trained_run, tmp_path, capsys):
    chips = tmp_path / "chips"
    chips.mkdir()
    (chips / "broken.tif").write_bytes(b"II*\x00 not really a tiff")
    assert main(["predict-chips", str(trained_run), str(chips), "-o", str(tmp_path / "p.csv")]) == 2
    assert f"cannot read chip {chips / 'broken.tif'}" in _error_line(capsys)


def test_missing_data_root_is_one_line(tmp_path, capsys):
    missing = tmp_path / "no_such_folder"
    args = ["fit", "--config", "geotiff_folder", f"--data.init_args.root={missing}",
            "--data.init_args.bands=null", "--trainer.max_steps=1"]
    assert main(args) == 2
    line = _error_line(capsys)
    assert line.startswith("error: ") and str(missing) in line


def test_debug_shows_the_traceback(trained_run, truncated, monkeypatch):
    args = ["test", "--config", str(trained_run / "config.yaml"), "--ckpt_path", str(truncated)]
    with pytest.raises(CheckpointReadError, match="half.ckpt"):
        main([*args, "--debug"])
    monkeypatch.setenv(DEBUG_ENV, "1")
    with pytest.raises(CheckpointReadError):
        main(args)


@pytest.mark.slow
def test_console_script_exits_2_with_one_line(trained_run, truncated):
    script = Path(sys.executable).with_name("rs-metapeft")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "rs_metapeft.cli"]
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1"}
    env.pop(DEBUG_ENV, None)
    proc = subprocess.run([*command, "test", "--config", str(trained_run / "config.yaml"),
                           "--ckpt_path", str(truncated)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(
        f"error: cannot read checkpoint {truncated}")
