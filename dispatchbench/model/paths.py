"""Paths as input: the checks every file the package reads or writes goes through first.

A path is user input like any cell. The operating system answers an overlong path, a path
nested through thousands of folders, a FIFO or a device with errors (``ENAMETOOLONG``,
``ELOOP``) that ``Path.exists()`` raises instead of answering, or with a read that never ends
(a FIFO with no writer, ``/dev/zero``). Each of those is refused here as one line naming the
path and the fix (``docs/model.md``, "Limits").
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from dispatchbench.model.errors import InputError

MAX_PATH_BYTES = 4095  # Linux PATH_MAX (4,096 with the terminating NUL)
MAX_NAME_BYTES = 255  # one file or folder name (NAME_MAX)


def _shown(path: str | Path) -> str:
    text = str(path)
    return text if len(text) <= 120 else f"{text[:60]}...{text[-40:]} ({len(text)} characters)"


def check_path(path: str | Path, option: str = "file") -> Path:
    """``path`` as a :class:`Path` when its length and its names' lengths are ones the system takes."""
    if not isinstance(path, (str, os.PathLike)):  # the Python API: load_problem(5) is one line too
        raise InputError(option, _shown(path), "is not a path", "give the path as a str or pathlib.Path")
    text = os.fsencode(str(path))
    if not text:
        raise InputError(option, "path", "is empty", "give the path of a file")
    if b"\0" in text:
        raise InputError(option, "path", "contains a NUL character", "give a path without control characters")
    if len(text) > MAX_PATH_BYTES:
        raise InputError(
            _shown(path), option, f"the path is {len(text)} bytes long, over {MAX_PATH_BYTES}", "use a shorter path"
        )
    longest = max(text.split(b"/"), key=len)
    if len(longest) > MAX_NAME_BYTES:
        raise InputError(
            _shown(path),
            option,
            f"a file or folder name in the path is {len(longest)} bytes long, over {MAX_NAME_BYTES}",
            "use shorter names",
        )
    return Path(path)


def _stat(path: Path, option: str) -> os.stat_result | None:
    """``os.stat`` of ``path`` (None if nothing is there); errors other than absence are one line."""
    try:
        return path.stat()
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    except OSError as exc:
        why = {
            errno.ENAMETOOLONG: "the path is too long for the system",
            errno.ELOOP: "the path loops through symbolic links or is nested too deeply",
            errno.EACCES: "permission denied",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        raise InputError(_shown(path), option, why, "check the path") from None


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def exists(path: str | Path, option: str = "file") -> bool:
    """Whether anything is at ``path``: ``Path.exists`` without its tracebacks."""
    return _stat(check_path(path, option), option) is not None


def regular_input(path: str | Path, option: str, max_bytes: int | None = None) -> Path:
    """``path`` when it is an existing regular file (at most ``max_bytes``), else one line.

    A FIFO or a device is refused before it is opened: reading one may never end.
    """
    path = check_path(path, option)
    info = _stat(path, option)
    if info is None:
        raise InputError(_shown(path), option, "not found", "give the path of an existing file")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(_shown(path), option, f"is {_kind(info.st_mode)}, not a file", "give the path of a file")
    if max_bytes is not None and info.st_size > max_bytes:
        raise InputError(
            _shown(path),
            option,
            f"is {info.st_size / 2**20:.0f} MiB, over the {max_bytes / 2**20:.0f} MiB limit",
            "split it into smaller files (docs/model.md, limits)",
        )
    return path


def output_file(path: str | Path, option: str = "--out") -> Path:
    """``path`` when a regular file can be written there: nothing there yet or a regular file,
    in an existing folder. A directory, FIFO, device (``/dev/null`` included: the command
    would report success for a file that is not there) or socket is refused, before any work."""
    path = check_path(path, option)
    if path.is_symlink():  # writing through it would change whatever file the link names
        raise InputError(
            option, _shown(path), "is a symbolic link", "give the path of a regular file (links are not followed)"
        )
    info = _stat(path, option)
    if info is not None and not stat.S_ISREG(info.st_mode):
        example = f" such as {path / 'out.txt'}" if stat.S_ISDIR(info.st_mode) else ""
        raise InputError(
            option, _shown(path), f"is {_kind(info.st_mode)}", f"give the path of a regular file to write{example}"
        )
    parent = _stat(path.parent, option)
    if parent is None or not stat.S_ISDIR(parent.st_mode):
        raise InputError(
            option, _shown(path), f"folder {_shown(path.parent)} does not exist", "create it or choose another path"
        )
    return path
