"""Where a state file's states come from: its protocol split and replicate, recorded on every
results row (issue 18, item 6), so a table can say "development test" or "test replicate 1"
instead of leaving the reader to guess which seed drew the states.

How a run learns it (first that applies):

1. the caller says so: ``dispatchbench run --split test --replicate 1`` (one value for every
   states file, or ``--split FILE=SPLIT`` per file), or a study, which drew the states itself;
2. a **sidecar** ``<states file>.provenance.json`` next to the file, written by
   ``dispatchbench generate states --seed S``: the seed, its split and replicate, and the
   SHA-256 of the CSV it describes — a sidecar whose hash does not match the file is refused
   (the CSV was edited after it was generated, so its states are no longer the seed's);
3. otherwise nothing is claimed: ``split`` and ``replicate`` are null.

Splits: ``training``/``validation``/``test`` (the protocol's seeds, :mod:`protocol`),
``reported`` (the paper's reported cases: shown, never tuned on) and ``none`` (states drawn
outside the protocol, e.g. seeds ≥ 3000). The replicate is the seed's offset in its split
(test seed 2000 is replicate 0, 2001 replicate 1); ``reported`` and ``none`` have none.

Replicate 0 of the test split (seed 2000) was looked at during development, so tables call its
results "development test"; replicate N ≥ 1 is "test replicate N" (``docs/protocol.md``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dispatchbench.instances.protocol import SPLITS, split_of
from dispatchbench.model.errors import InputError

SIDECAR_SUFFIX = ".provenance.json"
SPLIT_NAMES = (*SPLITS, "reported", "none")
FORMAT = 1


@dataclass(frozen=True)
class Provenance:
    """A states file's split (one of :data:`SPLIT_NAMES`, or None: not stated) and replicate."""

    split: str | None = None
    replicate: int | None = None
    seed: int | None = None  # the generator seed, when known

    def __post_init__(self) -> None:
        if self.split is not None and self.split not in SPLIT_NAMES:
            raise ValueError(f"split {self.split!r} is not one of {', '.join(SPLIT_NAMES)}")
        if self.replicate is not None:
            if isinstance(self.replicate, bool) or not isinstance(self.replicate, int) or self.replicate < 0:
                raise ValueError(f"replicate {self.replicate!r} is not a whole number >= 0")
            if self.split not in SPLITS:
                raise ValueError(f"a replicate belongs to a split of seeds ({', '.join(SPLITS)}), not {self.split!r}")
            SPLITS[self.split].seed(self.replicate)  # inside the split's seeds, else ValueError

    @classmethod
    def of_seed(cls, seed: int) -> Provenance:
        split = split_of(seed)
        return cls(split, seed - SPLITS[split].first if split in SPLITS else None, seed)

    def describe(self) -> str:
        """How a table names these states."""
        return describe(self.split, self.replicate)


def describe(split: Any, replicate: Any) -> str:
    """``development test`` (test replicate 0, seed 2000: looked at during development), ``test
    replicate N`` (N ≥ 1, fresh), ``validation replicate N``, ``reported case``, or ``—``."""
    if not isinstance(split, str) or not split:
        return "—"
    if split == "reported":
        return "reported case"
    if split == "none":
        return "outside the protocol"
    try:
        n = int(replicate)
    except (TypeError, ValueError):
        return split
    if split == "test":
        return "development test" if n == 0 else f"test replicate {n}"
    return f"{split} replicate {n}"


def sidecar_path(states_path: str | Path) -> Path:
    path = Path(states_path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_sidecar(states_path: str | Path, seed: int) -> Path:
    """Record that ``states_path`` holds states drawn with generator ``seed`` (call after writing it)."""
    p = Provenance.of_seed(seed)
    path = sidecar_path(states_path)
    data = {
        "format": FORMAT,
        "states_file": Path(states_path).name,
        "states_sha256": _sha256(Path(states_path)),
        "seed": seed,
        "split": p.split,
        "replicate": p.replicate,
        "written_by": "dispatchbench generate states",
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
    return path


def read_sidecar(states_path: str | Path) -> Provenance | None:
    """The sidecar's provenance, None when there is no sidecar; a broken or stale one is an
    :class:`InputError` naming it and the fix."""
    path = sidecar_path(states_path)
    if not path.is_file():
        return None
    fix = f"delete {path.name} or regenerate the states with `dispatchbench generate states`"
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        raise InputError(path, "file", "is not a provenance record (not JSON)", fix) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(path, "format", "is not a provenance record of this version", fix)
    if data.get("states_sha256") != _sha256(Path(states_path)):
        raise InputError(
            path, "states_sha256", f"describes other content than {Path(states_path).name} (edited since)", fix
        )
    try:
        return Provenance(data.get("split"), data.get("replicate"), data.get("seed"))
    except ValueError as exc:
        raise InputError(path, "split/replicate", str(exc), fix) from None
