"""Files of a results or report folder: opened without following links, written whole.

Why: a results folder is written while plugin code runs and is copied, shared and re-read
later. A symbolic link planted at ``rows.jsonl`` or ``.lock`` would make the harness append to,
or truncate, a file anywhere the user can write; one at ``tables/table4.md`` would make
``table`` overwrite it. So:

* every file is opened relative to its folder with ``O_NOFOLLOW`` (and every sub-folder on the
  way with ``O_NOFOLLOW | O_DIRECTORY``): a link is refused with one line naming it, never
  followed. The folder itself may be a link (``runs -> /scratch/runs`` is the user's choice);
* an output file is written to a fresh temporary file beside it (``O_EXCL``) and renamed over
  the destination, so a reader never sees half a file and a crash leaves the old one; a link
  at the destination is refused, not replaced, since someone put it there on purpose.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from dispatchbench.model.errors import InputError

_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def link_error(path: Path) -> InputError:
    try:
        target = f" (to {os.readlink(path)})"
    except OSError:
        target = ""
    return InputError(
        path,
        "file",
        f"is a symbolic link{target}; results and report files are never opened through a link",
        "replace the link by the file itself, or remove it",
    )


def _os_error(path: Path, exc: OSError, what: str) -> InputError:
    return InputError(path, "file", f"cannot be {what} ({exc.strerror or exc})", "check the folder's permissions")


@contextmanager
def folder_fd(root: Path, sub: Iterable[str] = (), *, create: bool = False) -> Iterator[int]:
    """A descriptor of ``root/sub...``; each part of ``sub`` must be a real folder, not a link
    (created when ``create``)."""
    root = Path(root)
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise _os_error(root, exc, "opened as a folder") from None
    where = root
    try:
        for part in sub:
            where = where / part
            if create:
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if _is_link(fd, part):
                    raise link_error(where) from None
                raise _os_error(where, exc, "opened as a folder") from None
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def _split(root: Path, rel: str | Path) -> tuple[tuple[str, ...], str]:
    parts = Path(rel).parts
    if not parts or Path(rel).is_absolute() or ".." in parts:
        raise ValueError(f"{rel!r} is not a path inside {root}")
    return parts[:-1], parts[-1]


def open_file(root: Path, rel: str | Path, flags: int, mode: int = 0o644, *, create_dirs: bool = False) -> int:
    """``os.open`` of ``root/rel`` that refuses a link at ``rel`` or at any folder on its way."""
    sub, name = _split(root, rel)
    with folder_fd(root, sub, create=create_dirs) as fd:
        try:
            return os.open(name, flags | _NOFOLLOW, mode, dir_fd=fd)
        except OSError:
            if _is_link(fd, name):
                raise link_error(Path(root, rel)) from None
            raise


def read_bytes(root: Path, rel: str | Path) -> bytes:
    """The bytes of ``root/rel``, refusing a link (``FileNotFoundError`` if it does not exist)."""
    fd = open_file(root, rel, os.O_RDONLY)
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a folder (or a FIFO) where a results file belongs
        os.close(fd)
        raise InputError(Path(root, rel), "file", "is not a regular file", "restore the file from a copy of the folder")
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def exists(root: Path, rel: str | Path) -> bool:
    """Whether ``root/rel`` is there (a link counts, so that reading it is refused, not skipped)."""
    return os.path.lexists(Path(root, rel))


def write_atomic(root: Path, rel: str | Path, data: bytes) -> Path:
    """Write ``root/rel`` whole: a temporary file beside it, fsynced, then renamed over it.

    A link at the destination (or on the way) is refused; a missing folder on the way is made.
    """
    sub, name = _split(root, rel)
    path = Path(root, rel)
    with folder_fd(root, sub, create=True) as fd:
        if _is_link(fd, name):
            raise link_error(path)
        tmp = f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644, dir_fd=fd)
        except OSError as exc:
            raise _os_error(path, exc, "written") from None
        try:
            with os.fdopen(out, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=fd)
            except OSError:
                pass
            raise
    return path


def write_text(root: Path, rel: str | Path, text: str) -> Path:
    return write_atomic(root, rel, text.encode("utf-8"))


def refuse_links(root: Path, folders: Iterable[str] = ()) -> None:
    """Refuse (one line naming it) any symbolic link directly in ``root`` or in its sub-folders
    ``folders``: a results folder holds its own files, and a link among them means someone
    tried to make a reader or writer go elsewhere."""
    root = Path(root)
    for where in [root, *(root / f for f in folders)]:
        if where != root and (where.is_symlink() or not where.is_dir()):
            if where.is_symlink():
                raise link_error(where)
            continue
        try:
            entries = list(os.scandir(where))
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise _os_error(where, exc, "listed") from None
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.is_symlink():
                raise link_error(Path(entry.path))
