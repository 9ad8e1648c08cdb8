"""Files that survive a power cut: every file the app writes goes through here.

A file written in place is torn by a power cut, a full disk or a second writer: a calibration,
a learned background or a scene that is half there stops the installation at its next start.
So each write goes to a temporary file of its own in the same folder (same filesystem, so the
rename is atomic; a unique name, so two writers never share one), is flushed and fsynced,
replaces the target with ``os.replace``, and the folder is fsynced so that the rename itself
is on disk. A reader sees the old file or the new one, never a mixture; a write that fails
leaves the old file and no temporary behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np


def _umask() -> int:
    """The process's umask, read without changing it (os.umask would, for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _mode_for(path: Path) -> int:
    """The permissions the new file gets: the old file's, else what open() would have given.

    mkstemp makes its file 0600; a scene replaced that way would turn unreadable to the
    operator's other accounts."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def fsync_folder(folder: str | Path) -> None:
    """Make a rename in ``folder`` durable: without this the new name may be lost at a power
    cut though the data is on disk. Filesystems that cannot sync a folder are let be."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file that becomes ``path`` when the ``with`` block ends without an error.

    Any error, KeyboardInterrupt included, removes the temporary and leaves ``path`` as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fchmod(f.fileno(), _mode_for(path))
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_folder(path.parent)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and durably."""
    with replacing(path) as f:
        f.write(data)
    return Path(path)


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically and durably."""
    return write_bytes(path, text.encode(encoding))


def write_json(path: str | Path, data: Any, indent: int | None = 2) -> Path:
    """Write ``data`` as JSON (with a final newline) to ``path`` atomically and durably."""
    return write_text(path, json.dumps(data, indent=indent) + "\n")


def save_npz(path: str | Path, compressed: bool = True, **arrays: np.ndarray) -> Path:
    """``np.savez(_compressed)`` to exactly ``path`` (numpy would add ``.npz`` to a name without
    it), atomically and durably."""
    save = np.savez_compressed if compressed else np.savez
    with replacing(path) as f:
        save(f, **arrays)
    return Path(path)


def file_problem(path: Path, folder_ok: bool = False, empty_ok: bool = False) -> str | None:
    """Why ``path`` cannot be read as a file (missing, a folder, not a regular file, empty), or
    None: the checks a named file gets before its reader opens it."""
    if not path.exists():
        return "file not found"
    if path.is_dir():
        return None if folder_ok else "is a directory, not a file"
    if not path.is_file():
        return "not a regular file"
    if path.stat().st_size == 0 and not empty_ok:
        return "empty file"
    return None


def one_line(err: BaseException) -> str:
    """An error's whole text on one line, its lines joined by '; ' (a scene's problems, each
    naming its key, for a log line, an OSC reply or stderr)."""
    return "; ".join(line.strip() for line in str(err).splitlines() if line.strip())


def describe_error(err: BaseException) -> str:
    """One line for why a file could not be read: the exception's type and its first line."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


# what reading a torn, empty or foreign file raises: json and numpy's header reader (ValueError),
# an empty .npy (EOFError), a cut zip or its compressed data, a missing array or key, a wrong
# type inside, and OSError for a folder or no permission
UNREADABLE = (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, zlib.error)
