"""The atomic writer: a reader sees the old file or the new one, never a part, and no temp stays."""

import os
import stat

import pytest

from rs_metapeft.io import atomic_path, atomic_write_json, atomic_write_text


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "report.json"
    atomic_write_json(target, {"old": 1})
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as tmp:
            tmp.write_text('{"half": ')
            raise RuntimeError("disk full")
    assert target.read_text() == '{\n  "old": 1\n}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_the_temporary_is_hidden_beside_the_target_and_keeps_the_suffix_on_request(tmp_path):
    target = tmp_path / "sub" / "last.ckpt"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".last.ckpt.")
        assert not tmp.name.endswith(".ckpt")  # a "*.ckpt" glob never sees it
        tmp.write_bytes(b"x")
    with atomic_path(tmp_path / "plot.png", keep_suffix=True) as tmp:
        assert tmp.suffix == ".png"
        tmp.write_bytes(b"y")
    assert target.read_bytes() == b"x"


def test_written_files_get_the_permissions_of_a_plain_open(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("a")
    atomic_write_text(tmp_path / "atomic.txt", "a")
    mode = stat.S_IMODE(os.stat(tmp_path / "atomic.txt").st_mode)
    assert mode == stat.S_IMODE(os.stat(plain).st_mode)
