"""The files of a trained model, and reading them without running anyone's code.

A run's folder holds ``checkpoint.pt`` (everything needed to resume training bit for bit) and
``model.json`` (what the model is: solver, problem, seed, steps, hyper-parameters), so a
``solver[model=DIR]`` can refuse a model trained on another problem with a clear reason
instead of producing nonsense.

Models are data, not code. A model folder is something people download and share, and
``pickle`` executes whatever a file tells it to, so ``checkpoint.pt`` is read with
``torch.load(..., weights_only=True)``: tensors and plain containers only. Everything that is
not a tensor — step, RNG states, replay-buffer cursors, learner scales — travels as one JSON
string inside it, with NumPy arrays swapped for tensors on the way in and back on the way out.
A file that needs anything else to load is refused with one line. Writes are atomic: an
interrupted save never leaves a broken checkpoint behind a good one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dispatchbench.contract.limits import SEED_MAX
from dispatchbench.model.errors import InputError

CHECKPOINT_FILE = "checkpoint.pt"
META_FILE = "model.json"
FORMAT = 2  # 1: pickled checkpoints (never loaded: they could run code)
REQUIRED_META = {
    "format": int,
    "solver": str,
    "problem": str,
    "problem_fingerprint": str,
    "hyperparameters": dict,
    "steps": int,
    "seed": int,
}
RETRAIN = "train a new model with `dispatchbench train` (or point model= at another folder)"


class ModelFileError(InputError):
    """A model folder that cannot be used: the CLI prints it as one line and exits 2."""

    def __init__(self, path: str | Path, problem: str, fix: str = RETRAIN) -> None:
        path = Path(path)
        super().__init__(str(path.parent), path.name, problem, fix)


@dataclass
class Checkpoint:
    step: int
    networks: dict[str, dict[str, Any]]  # state dicts
    optimizers: dict[str, dict[str, Any]]
    state: dict[str, Any]  # the learner's JSON state, arrays restored as NumPy
    meta: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(
    out_dir: Path,
    *,
    step: int,
    networks: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    state: dict[str, Any],
    meta: dict[str, Any],
) -> None:
    """Write ``checkpoint.pt`` and then ``model.json`` (whose ``steps`` says which step it holds)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    text = json.dumps(_split(state, tensors), allow_nan=True)
    payload = {
        "format": FORMAT,
        "step": int(step),
        "networks": {k: v.state_dict() for k, v in networks.items()},
        "optimizers": {k: v.state_dict() for k, v in optimizers.items()},
        "tensors": tensors,
        "state": text,
    }
    tmp = out_dir / (CHECKPOINT_FILE + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, out_dir / CHECKPOINT_FILE)
    info = {**meta, "format": FORMAT, "steps": int(step)}
    tmp_meta = out_dir / (META_FILE + ".tmp")
    tmp_meta.write_text(json.dumps(info, indent=2, default=_jsonable))
    os.replace(tmp_meta, out_dir / META_FILE)


MAX_META_BYTES = 16 * 2**20  # a model.json of 328 agents is ~0.2 MB; a 1-GB one is not a model's
MAX_STEPS = 10**9  # training steps a model.json may claim (a decade of these steps' wall time)
MAX_TEXT = 4096  # characters of a text field (solver, spec, problem name, a version)
MAX_NAMES = 100_000  # entries of group_order / region_order (generated problems stop near 1,300)
FINGERPRINT_CHARS = 16  # lifecycle.problem_fingerprint: the first 16 hex digits of a SHA-256
ANY_SIZE = "any-size"  # the "scope" (and "problem_fingerprint") of a model trained on generated instances


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"holds {name}, which is not a number JSON allows")


def read_meta(out_dir: str | Path) -> dict[str, Any]:
    """``model.json`` of ``out_dir``, checked as data: a JSON object of bounded size and nesting,
    no NaN or infinity, every required key with the right type and range (``docs/learning.md``).
    Hyper-parameters are checked against the learner's declared ranges by ``lifecycle``, and the
    group and region orders against the problem once it is known."""
    path = Path(out_dir) / META_FILE
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_META_BYTES + 1)
    except FileNotFoundError:
        raise ModelFileError(path, "not found: the folder holds no trained model") from None
    except OSError as exc:
        raise ModelFileError(path, f"cannot be read ({exc.strerror or exc})") from None
    if len(data) > MAX_META_BYTES:
        raise ModelFileError(
            path, f"is larger than {MAX_META_BYTES // 2**20} MiB (not a model.json dispatchbench wrote)"
        )
    try:
        meta = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise ModelFileError(path, "is not text (not a model.json written by dispatchbench)") from None
    except json.JSONDecodeError as exc:
        raise ModelFileError(path, f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise ModelFileError(path, "is nested too deeply to be a model.json") from None
    except ValueError as exc:  # NaN/Infinity, or an integer of thousands of digits
        raise ModelFileError(path, f"is not a model.json dispatchbench wrote: {str(exc)[:120]}") from None
    if not isinstance(meta, dict):
        raise ModelFileError(path, f"holds a JSON {type(meta).__name__}, not an object with the model's description")
    if meta.get("format") == 1:
        raise ModelFileError(
            path,
            "was written by an older dispatchbench whose checkpoints are pickles, which "
            "are never loaded (they could run code)",
        )
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ModelFileError(path, f"lacks {', '.join(missing)}")
    for key, kind in REQUIRED_META.items():
        if not isinstance(meta[key], kind) or isinstance(meta[key], bool):
            raise ModelFileError(path, f"{key} is a {type(meta[key]).__name__}, not a {kind.__name__}")
    if meta["format"] != FORMAT:
        raise ModelFileError(path, f"has format {meta['format']}; this dispatchbench reads format {FORMAT}")
    problem = check_meta_fields(meta)
    if problem:
        raise ModelFileError(path, problem)
    return meta


def check_meta_fields(meta: dict[str, Any]) -> str | None:
    """What is wrong with the shared fields of a ``model.json`` (types already checked), or None."""
    for key in ("solver", "problem", "spec"):
        if key in meta and not (isinstance(meta[key], str) and 0 < len(meta[key]) <= MAX_TEXT):
            return f"{key} must be text of 1 to {MAX_TEXT} characters"
    fingerprint = meta["problem_fingerprint"]
    if meta.get("scope") == ANY_SIZE and fingerprint == ANY_SIZE:
        pass  # one model for any size: no instance to fingerprint
    elif len(fingerprint) != FINGERPRINT_CHARS or any(ch not in "0123456789abcdef" for ch in fingerprint):
        return f"problem_fingerprint {fingerprint[:40]!r} is not {FINGERPRINT_CHARS} hexadecimal digits"
    if not 0 <= meta["seed"] <= SEED_MAX:
        return f"seed {meta['seed']} is outside 0 to {SEED_MAX}"
    if not 0 <= meta["steps"] <= MAX_STEPS:
        return f"steps {meta['steps']} is outside 0 to {MAX_STEPS}"
    if "train_time_s" in meta:
        value = meta["train_time_s"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
            return f"train_time_s {value!r} is not a number of seconds >= 0"
    if not all(isinstance(k, str) and len(k) <= MAX_TEXT for k in meta["hyperparameters"]):
        return "hyperparameters has a key that is not a short name"
    for key in ("group_order", "region_order"):
        if meta.get(key) is None:  # models written before the order was recorded
            continue
        names = meta[key]
        if not isinstance(names, list) or len(names) > MAX_NAMES:
            return f"{key} must be a list of at most {MAX_NAMES} names"
        if not all(isinstance(n, str) and 0 < len(n) <= MAX_TEXT for n in names):
            bad = next(n for n in names if not (isinstance(n, str) and 0 < len(n) <= MAX_TEXT))
            return f"{key} holds {str(bad)[:40]!r}, not a name"
        seen: set[str] = set()
        for name in names:
            if name in seen:
                return f"{key} names {name[:40]!r} twice"
            seen.add(name)
    if meta.get("scope") == ANY_SIZE or meta["problem_fingerprint"] == ANY_SIZE:
        problem = _any_size_fields(meta)
        if problem:
            return problem
    versions = meta.get("versions", {})
    if not isinstance(versions, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(k) + len(v) <= MAX_TEXT for k, v in versions.items()
    ):
        return "versions must map library names to version text"
    return None


def _finite_range(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in value)
        and value[0] <= value[1]
    )


def _any_size_fields(meta: dict[str, Any]) -> str | None:
    """What is wrong with the fields an any-size model decides by (its scope, the ratings it saw,
    the sizes it trained on), or None: they gate which problems it accepts, so a tampered one must
    be one line here, not a KeyError when a problem is checked against it."""
    if meta.get("scope") != ANY_SIZE or meta["problem_fingerprint"] != ANY_SIZE:
        return f"scope and problem_fingerprint must both be {ANY_SIZE!r} for a model of any size"
    coverage = meta.get("coverage")
    if not isinstance(coverage, dict):
        return "coverage must be an object (the group types and rating ranges the model saw)"
    types = coverage.get("types")
    if not isinstance(types, list) or not types or not all(isinstance(t, str) and len(t) <= MAX_TEXT for t in types):
        return "coverage.types must be a non-empty list of group types"
    ratings = coverage.get("ratings")
    if not isinstance(ratings, dict) or set(ratings) != set(types):
        return "coverage.ratings must give the rating ranges of exactly the types in coverage.types"
    for kind, ranges in ratings.items():
        if not isinstance(ranges, dict) or not {"p_max", "turndown"} <= set(ranges):
            return f"coverage.ratings.{kind[:40]} must give the p_max and turndown ranges"
        for key, bounds in ranges.items():
            if not (isinstance(key, str) and len(key) <= MAX_TEXT and _finite_range(bounds)):
                return f"coverage.ratings.{kind[:40]}.{str(key)[:40]} must be [low, high], finite, low <= high"
    if not _finite_range(coverage.get("cs_max")):
        return "coverage.cs_max must be [low, high], finite, low <= high"
    commitment = coverage.get("commitment")
    if not isinstance(commitment, list) or not commitment or not all(isinstance(c, bool) for c in commitment):
        return "coverage.commitment must be a non-empty list of true/false"
    tolerance = coverage.get("tolerance", 0.0)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance <= 10:
        return "coverage.tolerance must be a number from 0 to 10"
    sizes = meta.get("training_set", {}).get("sizes") if isinstance(meta.get("training_set"), dict) else None
    if not isinstance(sizes, list) or not sizes or not all(isinstance(n, int) and 0 < n <= MAX_NAMES for n in sizes):
        return "training_set.sizes must be a non-empty list of region counts"
    return None


def load_checkpoint(out_dir: str | Path) -> Checkpoint:
    """The checkpoint of ``out_dir`` and its checked ``model.json``, loaded as data only."""
    out_dir = Path(out_dir)
    meta = read_meta(out_dir)
    path = out_dir / CHECKPOINT_FILE
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelFileError(path, "not found: the folder holds no trained model") from None
    except Exception as exc:  # UnpicklingError for code or garbage, RuntimeError/EOFError for garbage
        raise ModelFileError(path, _load_failure(exc)) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(path, f"is not a format-{FORMAT} dispatchbench checkpoint")
    try:
        state = _join(json.loads(payload["state"]), payload["tensors"])
        step = int(payload["step"])
        networks, optimizers = dict(payload["networks"]), dict(payload["optimizers"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(path, f"is incomplete ({type(exc).__name__}: {exc})") from None
    if step != meta["steps"]:
        raise ModelFileError(path, f"holds step {step} but {META_FILE} says {meta['steps']} (an interrupted save)")
    return Checkpoint(step=step, networks=networks, optimizers=optimizers, state=state, meta=meta)


def _load_failure(exc: Exception) -> str:
    """torch's multi-paragraph refusal, as one line that says whether the file tried to run code."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    marker = next((i for i, line in enumerate(lines) if "WeightsUnpickler error" in line), None)
    detail = lines[0] if lines else ""
    if marker is not None:
        detail = lines[marker].split("WeightsUnpickler error:", 1)[-1].strip()
        if not detail and marker + 1 < len(lines):
            detail = lines[marker + 1]
    if "Unsupported global" in detail:
        culprit = detail.split("GLOBAL", 1)[-1].split(" was not", 1)[0].strip()
        return f"refused: it holds Python objects other than tensors ({culprit[:60]}), which could run code on loading"
    return f"is not a readable checkpoint ({(detail or type(exc).__name__)[:120]})"


def _split(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """``value`` as JSON, each array or tensor replaced by a reference into ``tensors``."""
    if isinstance(value, dict):
        return {str(k): _split(v, tensors) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split(v, tensors) for v in value]
    if isinstance(value, np.ndarray):
        key = str(len(tensors))
        tensors[key] = torch.from_numpy(np.ascontiguousarray(value).copy())
        return {"__array__": key}
    if isinstance(value, torch.Tensor):
        key = str(len(tensors))
        tensors[key] = value.detach().clone()
        return {"__tensor__": key}
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    return value


def _join(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return tensors[value["__array__"]].numpy()
        if set(value) == {"__tensor__"}:
            return tensors[value["__tensor__"]]
        return {k: _join(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_join(v, tensors) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to model.json")
