"""Safe file handling: atomic writes, paths kept inside their folder, outputs never clobbered.

Atomic writes are the one way the package writes a file a reader may open at any moment.

Every writer stages its bytes in a temporary file beside the target (same folder, so the final
``os.replace`` is a rename on one filesystem, never a copy) and moves it into place only once it is
complete. A crash or a kill leaves either the old file or the new one, never half of either, and no
stray temporary file.

:func:`path_inside` resolves a path read from a data file (a CSV row, a split list, a manifest)
inside the folder it belongs to; :func:`refuse_existing` stops a command before it replaces
earlier results that the user did not ask to replace.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_path", "atomic_write_json", "atomic_write_text", "path_inside", "refuse_existing",
]


@contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = False,
                keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` when the block succeeds.

    Args:
        path: Final file. Its folder is created when missing.
        fsync: Flush the finished file to disk before the move (checkpoints: a power cut after
            the rename must not leave an empty file).

        keep_suffix: End the temporary name with ``path``'s suffix, for writers that pick a
            format from it. Off by default, so globs such as ``*.ckpt`` never see a half-written
            file.

    Yields:
        The temporary path to write to (hidden, in ``path``'s folder, with the permissions a
        plain ``open`` would have given).

    Raises:
        Whatever the block raises; the temporary file is removed and ``path`` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = target.suffix if keep_suffix else ".tmp"
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are shared like any file
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, data: Any, *, indent: int | None = 2) -> Path:
    """Write ``data`` as JSON to ``path`` atomically and return the path."""
    return atomic_write_text(path, json.dumps(data, indent=indent))


def path_inside(root: str | os.PathLike, rel: str | os.PathLike) -> Path | None:
    """``root / rel`` normalised, or ``None`` when it leaves ``root``.

    The check is lexical (``..`` and absolute paths), so a symbolic link that the data's owner
    placed inside ``root`` is still followed.

    Example:
        >>> str(path_inside("/data", "forest/a.tif"))
        '/data/forest/a.tif'
        >>> path_inside("/data", "../etc/passwd") is None
        True
    """
    base = Path(os.path.normpath(Path(root).absolute()))
    path = Path(os.path.normpath(base / rel))
    return path if path.is_relative_to(base) else None


def refuse_existing(paths: Iterable[str | os.PathLike], overwrite: bool = False,
                    flag: str = "--overwrite") -> None:
    """Stop before replacing earlier results, unless ``overwrite``.

    Args:
        paths: the files (or folders) a command is about to write.
        overwrite: replace them anyway.
        flag: how the user asks for that (named in the message).

    Raises:
        FileExistsError: some of ``paths`` exist; the message names them and ``flag``.
    """
    if overwrite:
        return
    found = [str(p) for p in paths if Path(p).exists()]
    if found:
        raise FileExistsError(
            f"{', '.join(found)} already exist{'s' if len(found) == 1 else ''}; pass {flag} to "
            "replace, or choose another output"
        )
