"""Inputs that travel with a cell by content, so that a worker needs no shared file system.

A cell needs the problem file, the state file and any file or folder its spec names (a
learner's ``model=``). Paths would only work where the driver's files are visible at the same
place with the same contents; many clusters have no shared file system, and even on one
machine a file can change between the moment the harness hashed it and the moment a child
reads it. So a job carries the *bytes* with their SHA-256. The worker checks every hash on
arrival, then writes the files into a content-addressed cache (``<cache>/<sha256>/<name>``,
default ``~/.cache/dispatchbench/inputs``, or ``$DISPATCHBENCH_INPUT_CACHE``), where later cells
with the same content find them again — checked again before each use, so a damaged cache entry
is rewritten, never trusted. Writes go to a temporary folder renamed into place, so workers on
one machine (or one shared home) can fill the cache at the same time.

What is shipped of a folder: its regular files, recursively, at most :data:`MAX_FOLDER_BYTES`
in all. A symbolic link or a special file in it is refused with one line before any work (a
link could point anywhere on the driver, and would mean something else on the worker).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from dispatchbench.model.errors import InputError

CACHE_ENV = "DISPATCHBENCH_INPUT_CACHE"
MAX_FOLDER_BYTES = 2**30  # a model folder that travels with the cells of its spec (sent once per worker)
MAX_FOLDER_FILES = 10_000


class PayloadError(RuntimeError):
    """An input arrived damaged (its bytes do not match their hash) or cannot be written here."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_name(name: str) -> None:
    """A relative path inside the cache: no absolute path, no ``..``, nothing empty."""
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts):
        raise PayloadError(f"input name {name!r} is not a relative path inside its folder")


@dataclass(frozen=True)
class Blob:
    """One file's bytes, with the hash they had where they were read."""

    name: str  # the file's name; inside a folder, its '/'-separated path there
    data: bytes
    sha256: str

    @classmethod
    def of_bytes(cls, name: str, data: bytes) -> Blob:
        _check_name(name)
        return cls(name, bytes(data), sha256_bytes(data))

    @classmethod
    def of_file(cls, path: str | Path, name: str | None = None) -> Blob:
        path = Path(path)
        return cls.of_bytes(name or path.name, path.read_bytes())

    def verified(self) -> Blob:
        """This blob, after checking that its bytes still hash to what was recorded."""
        if sha256_bytes(self.data) != self.sha256:
            raise PayloadError(f"input {self.name!r} arrived damaged: its bytes do not match SHA-256 {self.sha256}")
        _check_name(self.name)
        return self


@dataclass(frozen=True)
class PathPayload:
    """A file or a folder a spec parameter names (``model=DIR``), by content."""

    name: str  # the base name the user's path had (messages and file names keep it)
    is_folder: bool
    files: tuple[Blob, ...]  # a file: one blob named ``name``; a folder: its files by relative path

    @property
    def digest(self) -> str:
        """SHA-256 over the names and hashes of everything in it: the cache key."""
        listing = [self.name, self.is_folder, sorted((b.name, b.sha256) for b in self.files)]
        return sha256_bytes(json.dumps(listing).encode())

    @property
    def size(self) -> int:
        return sum(len(b.data) for b in self.files)

    @classmethod
    def of_path(cls, path: str | Path, where: str) -> PathPayload:
        """Read a file or a folder's regular files. ``where`` names the spec and parameter for
        messages (``madrl_tvc[model=...]: parameter model``). Raises :class:`InputError`."""
        path = Path(path)
        if path.is_file():
            return cls(path.name, False, (Blob.of_file(path),))
        if not path.is_dir():
            raise InputError(path, where, "is neither a file nor a folder", "give an existing file or folder")
        files: list[Blob] = []
        total = 0
        for root, dirs, names in os.walk(path, followlinks=False):
            for entry in sorted(dirs + names):
                full = Path(root) / entry
                mode = full.lstat().st_mode
                rel = full.relative_to(path).as_posix()
                if stat.S_ISLNK(mode):
                    raise InputError(
                        full,
                        where,
                        "is a symbolic link; a folder that travels to the workers holds regular files only",
                        "copy the file it points to into the folder instead of linking it",
                    )
                if stat.S_ISDIR(mode):
                    continue
                if not stat.S_ISREG(mode):
                    raise InputError(full, where, "is not a regular file", "remove it from the folder")
                total += full.stat().st_size
                if total > MAX_FOLDER_BYTES or len(files) >= MAX_FOLDER_FILES:
                    raise InputError(
                        path,
                        where,
                        f"holds more than {MAX_FOLDER_BYTES // 2**20} MB or {MAX_FOLDER_FILES} files, "
                        "too much to send with every cell",
                        "keep only what the solver loads in the folder (model.json and checkpoint.pt)",
                    )
                files.append(Blob.of_file(full, rel))
        return cls(path.name, True, tuple(files))

    def verified(self) -> PathPayload:
        _check_name(self.name)
        for blob in self.files:
            blob.verified()
        return self


def cache_root() -> Path:
    """``$DISPATCHBENCH_INPUT_CACHE``, else ``$XDG_CACHE_HOME/dispatchbench/inputs`` (``~/.cache/...``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "dispatchbench" / "inputs"


def _matches(folder: Path, blobs: tuple[Blob, ...]) -> bool:
    """Every expected file is there with the expected bytes (a cache entry is checked before use)."""
    try:
        return all(sha256_bytes((folder / b.name).read_bytes()) == b.sha256 for b in blobs)
    except OSError:
        return False


def _materialise(key: str, blobs: tuple[Blob, ...], root: Path, folder: str = "") -> Path:
    """``root/key`` holding ``blobs`` (and the folder ``folder``, even if empty), written once
    and atomically; rewritten if found damaged."""
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    final = root / key
    for _attempt in range(3):
        if final.is_dir():
            if _matches(final, blobs) and (final / folder).is_dir():
                return final
            shutil.rmtree(final, ignore_errors=True)  # damaged or half-deleted: write it again
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
        try:
            (tmp / folder).mkdir(parents=True, exist_ok=True)
            for blob in blobs:
                target = tmp / blob.name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(blob.data)
            os.rename(tmp, final)
            return final
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another worker won the race: check its copy
    if final.is_dir() and _matches(final, blobs):
        return final
    raise PayloadError(f"cannot write the inputs cache {final}: set ${CACHE_ENV} to a writable folder")


def materialise_blob(blob: Blob, root: Path | None = None) -> Path:
    """The local path of ``blob``'s file (hash checked on arrival and on reuse)."""
    blob.verified()
    # keyed by name and content: the same bytes under another name (a copied problem file) must
    # get an entry of their own, or each would find the other's entry "damaged" and delete it
    # while a cell of the other run reads it
    key = sha256_bytes(json.dumps([blob.name, blob.sha256]).encode())
    return _materialise(key, (blob,), root or cache_root()) / blob.name


def materialise_path(payload: PathPayload, root: Path | None = None) -> Path:
    """The local path of the file or folder ``payload`` carries (hashes checked)."""
    payload.verified()
    if not payload.is_folder:
        return materialise_blob(payload.files[0], root)
    inside = tuple(Blob(f"{payload.name}/{b.name}", b.data, b.sha256) for b in payload.files)
    return _materialise(payload.digest, inside, root or cache_root(), payload.name) / payload.name
