"""Study files: what ``dispatchbench reproduce`` runs, as data (TOML) a user can copy and edit.

A study used to be Python constants in this layer, so "the scaling study on my instances, with
my budgets" meant editing the package. Now the paper's comparison and the scaling study are the
bundled files ``studies/paper.toml`` and ``studies/scaling.toml`` (installed as
``dispatchbench.studies``), and ``dispatchbench reproduce my-study.toml`` runs a user's own file
through the same code. The schema is documented in the README ("Studies").

Every key is checked before any work starts: an unknown key, a wrong type, a malformed spec or a
missing file is one :class:`InputError` naming the study file, the key and the fix. The
``[quick]`` table (``--quick``) holds overrides of the other top-level keys: tables merge key by
key, arrays (``methods``, ``instances``) replace whole; both the full and the quick study are
checked on every load, so a typo in ``[quick]`` is found on a full run too.

Nothing here names a solver plugin: what a method is (a learner to train, an exact reference)
comes from its plugin's capabilities when the study runs, and what the study compares against
comes from the file (``baseline``).

Growing the schema: each table is a frozen dataclass and a reader function that lists its keys,
so a new key is a field and a line: per-state time budgets relative to a learner's decision
time (``budgets = [1, 10, 100]``) and a training recipe across sizes (``train = { generated =
[4, 8, 16, 32], budget = "15m" }``: one model deciding every instance) belong to
:class:`Method`, a test replicate (``replicate = 1``) to :class:`TestStates`. A change that old
files cannot mean the same under raises ``SCHEMA``.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dispatchbench.model.bundled import problems_dir
from dispatchbench.model.errors import InputError, SolverNotFound

PACKAGE = "dispatchbench.studies"
SCHEMA = 1
KINDS = ("paper", "scaling")
QUICK_SUFFIX = "-quick"
INTERVALS_PER_DAY = 96
INSTANCE_FILES = "instances"  # the folder, inside a scaling study's results, of its problem and state files
NAME_CHARS = "letters, digits, -, _ and . (not first)"

TOP_KEYS = ("schema", "study", "problem", "generate", "instances", "test_states", "run", "methods", "quick")
ARRAYS = ("methods", "instances")  # arrays of tables: messages name an entry by its number
QUICK_KEYS = ("problem", "generate", "instances", "test_states", "run", "methods")  # what [quick] may override


# ---- the schema, as dataclasses -----------------------------------------------------------------


@dataclass(frozen=True)
class AnySize:
    """``train = { generated = [4, 8, 16, 32], budget = "15m" }`` of a scaling study's learner:
    one model per seed, trained once on generated instances of these sizes (training generator
    seeds, never the study's), deciding every instance of the study zero-shot. Its rows stand
    beside a per-instance learner's, so the table shows what training once for any size costs
    and gives up. ``budget`` (wall time) and ``steps`` bound the training; at least one."""

    sizes: tuple[int, ...]
    seconds: float | None = None
    steps: int | None = None

    def describe(self) -> str:
        limits = ([f"{self.steps} steps"] if self.steps else []) + ([f"{self.seconds:g} s"] if self.seconds else [])
        return f"trained once on generated {','.join(map(str, self.sizes))} regions ({' or '.join(limits)})"


@dataclass(frozen=True)
class Method:
    """One ``[[methods]]`` entry: a solver spec and how the study runs it.

    ``seeds`` are the solve seeds of a method that does not learn (a deterministic plugin runs seed
    0 only) and the training seeds of one that does (each trained model then runs once).
    ``train_steps`` is one number, or steps per number of regions (a size it lacks is skipped
    with ``skip_reason``). ``variants`` are extra parameters run as rows of their own with the
    same trained models (a search added at decision time is its own row)."""

    spec: str
    seeds: tuple[int, ...] = (0,)
    train_steps: int | Mapping[int, int] | None = None
    skip_reason: str = ""
    variants: tuple[str, ...] = ()
    where: str = ""  # the entry's name in messages, e.g. "[[methods]] #5"
    # matched budgets (issue 18 item 2): run this classical method again at each multiple of the
    # median online decision time of the learner ``budget_of`` (its spec), per instance size
    budgets: tuple[float, ...] = ()
    budget_of: str = ""
    any_size: AnySize | None = None  # ``train = {...}``: one model for every instance (scaling studies)

    @property
    def trains(self) -> bool:
        return self.train_steps is not None or self.any_size is not None

    def steps_at(self, regions: int) -> int | None:
        """Training steps on an instance of ``regions`` regions; None: skipped there."""
        if isinstance(self.train_steps, Mapping):
            return self.train_steps.get(regions)
        return self.train_steps

    def skip_text(self, regions: int) -> str:
        return self.skip_reason or f"the study gives no train_steps for {regions} regions"

    def variant_specs(self, spec: str) -> list[str]:
        """``spec`` with each variant's parameters first: ``madrl_tvc[model=X]`` and variant
        ``refine=3`` give ``madrl_tvc[refine=3,model=X]``."""
        name, _, rest = spec.partition("[")
        return [f"{name}[{v},{rest}" if rest else f"{name}[{v}]" for v in self.variants]


@dataclass(frozen=True)
class ProblemCases:
    """``[problem]`` of a paper study: one problem and its reported cases (never tuned on)."""

    file: Path
    cases: tuple[Path, ...]
    state: str  # the state Table IV shows


@dataclass(frozen=True)
class TestStates:
    """``[test_states]``: the protocol's unseen states (``docs/protocol.md``) drawn for a problem:
    one day of every family (every ``stride``-th interval, or the listed ``intervals``) plus
    ``random`` random states, all with the first seed of ``split``."""

    __test__ = False  # not a pytest class, when imported into a test module

    split: str = "test"
    stride: int = 1
    intervals: tuple[int, ...] = ()
    random: int = 0
    # the split's replicate (seed offset): test replicate 0 (seed 2000) was looked at during
    # development, a fresh replicate (1 = seed 2001) is evaluated once per released model version
    replicate: int = 0

    @property
    def seed(self) -> int:
        from dispatchbench.instances.protocol import SPLITS

        return SPLITS[self.split].seed(self.replicate)

    def draw(self, problem: Any) -> list[Any]:
        """The states, in the protocol's order (families, then random)."""
        from dispatchbench.instances.protocol import split_states

        return split_states(
            problem,
            self.split,
            stride=self.stride,
            random_count=self.random,
            replicate=self.replicate,
            intervals=self.intervals,
        )


@dataclass(frozen=True)
class Generated:
    """``[generate]`` of a scaling study: one generated instance per size."""

    regions: tuple[int, ...]
    split: str = "test"
    commitment: bool = True
    # the generator seed's replicate within the split, like [test_states]' (1: seed 2001, instances
    # nobody has looked at; the instances of replicate 0 were looked at during development)
    replicate: int = 0

    @property
    def seed(self) -> int:
        from dispatchbench.instances.protocol import SPLITS

        return SPLITS[self.split].seed(self.replicate)


@dataclass(frozen=True)
class Instance:
    """One ``[[instances]]`` entry of a scaling study: a user's problem file and its states."""

    name: str
    problem: Path
    states: tuple[Path, ...]


@dataclass(frozen=True)
class RunSettings:
    """``[run]``: the harness's limit and where cells run (the CLI's options override these)."""

    timeout_s: float = 60.0
    executor: str = "local"
    jobs: int | None = None  # None: up to two cores
    scheduler: str | None = None


@dataclass(frozen=True)
class Study:
    """A checked study file (or its ``[quick]`` variant)."""

    file: Path
    sha256: str
    name: str
    kind: str
    description: str
    report: str  # folder under --reports (``-quick`` added with --quick)
    quick: bool
    run: RunSettings
    methods: tuple[Method, ...]
    baseline: str | None = None  # paper: the improvement column's method; scaling: the 'vs baseline %' method
    problem: ProblemCases | None = None  # paper
    test_states: TestStates | None = None
    generate: Generated | None = None  # scaling, generated instances
    instances: tuple[Instance, ...] = field(default=())  # scaling, the user's own instances

    @property
    def report_name(self) -> str:
        return self.report + (QUICK_SUFFIX if self.quick else "")

    def record(self) -> dict[str, Any]:
        """What the results folder records about the study (``reproduce.json``, ``scaling.json``)."""

        def plain(value: Any) -> Any:
            if isinstance(value, Path):
                return _path_shown(value)
            if isinstance(value, Mapping):
                return {str(k): plain(v) for k, v in value.items()}
            if isinstance(value, (tuple, list)):
                return [plain(v) for v in value]
            if hasattr(value, "__dataclass_fields__"):
                return {k: plain(getattr(value, k)) for k in value.__dataclass_fields__ if k != "where"}
            return value

        return plain(self)


def _path_shown(path: Path) -> str:
    """A study's file as its report prints it: relative to the folder the study ran from, or named
    as bundled, so a committed report carries no one's home or temporary folder and reads the
    same from every clone; absolute only when it is neither."""
    for root, prefix in ((Path.cwd, ""), (studies_dir, "bundled: "), (problems_dir, "bundled: ")):
        try:
            return prefix + path.resolve().relative_to(root().resolve()).as_posix()
        except (ValueError, OSError, InputError):
            continue
    return str(path)


# ---- finding a study file -----------------------------------------------------------------------


def studies_dir() -> Path:
    """The folder holding the bundled study files."""
    folder = Path(str(importlib.resources.files(PACKAGE)))
    if not folder.is_dir():
        raise InputError(PACKAGE, "install", "the bundled studies are not a folder on disk", "install unzipped")
    return folder


def bundled_studies() -> list[str]:
    """Names of the bundled studies (``paper``, ``scaling``), for ``reproduce --help``."""
    try:
        return sorted(p.stem for p in studies_dir().glob("*.toml"))
    except (InputError, ModuleNotFoundError):
        return []


def find_study(target: str | Path) -> Path:
    """A study named as given: an existing file, else a bundled study by name (``paper``,
    ``paper.toml`` or ``studies/paper.toml``)."""
    given = Path(target)
    if given.is_file():
        return given.resolve()
    if given.parent.name in ("", "studies"):
        bundled = studies_dir() / (given.name if given.suffix == ".toml" else f"{given.name}.toml")
        if bundled.is_file():
            return bundled
    raise InputError(
        str(target),
        "study",
        "is neither a study file nor a bundled study",
        f"give a path to a study file (.toml) or one of: {', '.join(bundled_studies())}",
    )


# ---- reading and checking -----------------------------------------------------------------------


class _Reader:
    """One table of the study file, read key by key; every message names the file and the key."""

    def __init__(self, file: Path, data: Any, path: tuple[str | int, ...], quick_paths: set[tuple]) -> None:
        self.file, self.path, self.quick_paths = file, path, quick_paths
        self.data: dict[str, Any] = data

    # names in messages: "schema", "[run] timeout", "[[methods]] #3 spec", "[quick.test_states] stride"
    def name(self, key: str | None = None) -> str:
        path = self.path + ((key,) if key is not None else ())
        if not path:
            return "study file"
        if path == ("schema",):
            return "schema"
        quick = "quick." if any(path[:n] in self.quick_paths for n in range(1, len(path) + 1)) else ""
        head, rest = str(path[0]), path[1:]
        if head in ARRAYS and rest and isinstance(rest[0], int):
            table, rest = f"[[{quick}{head}]] #{rest[0] + 1}", rest[1:]
        else:
            table = f"[[{quick}{head}]]" if head in ARRAYS else f"[{quick}{head}]"
        return " ".join([table, ".".join(map(str, rest))]) if rest else table

    def fail(self, key: str | None, problem: str, fix: str) -> InputError:
        return InputError(self.file, self.name(key), problem, fix)

    def has(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str, kind: type | tuple[type, ...], what: str, example: str, default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                raise self.fail(key, "missing", f"add {key} = {example}")
            return default
        value = self.data[key]
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.fail(key, f"is {value!r}, not {what}", f"write e.g. {key} = {example}")
        if not isinstance(value, kind):
            raise self.fail(key, f"is {_shown(value)}, not {what}", f"write e.g. {key} = {example}")
        return value

    def text(self, key: str, example: str, default: Any = ...) -> Any:
        value = self.get(key, str, "text", example, default)
        if key in self.data and not value.strip():
            raise self.fail(key, "is empty", f"write e.g. {key} = {example}")
        return value

    def integer(self, key: str, low: int, high: int, example: str, default: Any = ...) -> Any:
        value = self.get(key, int, "a whole number", example, default)
        if isinstance(value, int) and not low <= value <= high:
            raise self.fail(key, f"is {value}, outside {low}..{high}", f"write e.g. {key} = {example}")
        return value

    def integers(self, key: str, low: int, high: int, example: str, default: Any = ...) -> Any:
        values = self.get(key, list, "a list of whole numbers", example, default)
        if values is default:
            return default
        if not values:
            raise self.fail(key, "is an empty list", f"write e.g. {key} = {example}")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int):
                raise self.fail(key, f"holds {_shown(v)}, not a whole number", f"write e.g. {key} = {example}")
            if not low <= v <= high:
                raise self.fail(key, f"holds {v}, outside {low}..{high}", f"write e.g. {key} = {example}")
        if len(set(values)) != len(values):
            raise self.fail(key, f"repeats a value ({values})", "list each value once")
        return tuple(values)

    def table(self, key: str, default: Any = ...) -> _Reader | None:
        value = self.get(key, dict, "a table", f"{{...}} or a [{key}] table", default)
        return None if value is None else _Reader(self.file, value, self.path + (key,), self.quick_paths)

    def tables(self, key: str, example: str) -> list[_Reader]:
        value = self.get(key, list, "an array of tables", example)
        if not value:
            raise self.fail(key, "is empty", f"add at least one: {example}")
        out = []
        for i, item in enumerate(value):
            sub = _Reader(self.file, item, self.path + (key, i), self.quick_paths)
            if not isinstance(item, dict):
                raise sub.fail(None, f"is {_shown(item)}, not a table", example)
            out.append(sub)
        return out

    def done(self, allowed: tuple[str, ...]) -> None:
        """Refuse a key nobody read: a typo must not be ignored silently."""
        for key in self.data:
            if key not in allowed:
                raise self.fail(key, "is not a key of this table", f"remove it, or use one of: {', '.join(allowed)}")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _merge(base: dict[str, Any], over: dict[str, Any], path: tuple[str, ...], seen: set[tuple]) -> dict[str, Any]:
    """``base`` with ``over``'s keys: tables merge key by key, anything else replaces; ``seen``
    collects the key paths that came from ``over`` (messages then name ``[quick...]``)."""
    out = dict(base)
    for key, value in over.items():
        here = path + (key,)
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = _merge(base[key], value, here, seen)
        else:
            out[key] = value
            seen.add(here)
    return out


def read_toml(file: Path) -> tuple[dict[str, Any], bytes]:
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise InputError(
            file, "file", f"cannot be read ({exc.strerror or exc})", "give a readable study file"
        ) from None
    try:
        return tomllib.loads(raw.decode("utf-8")), raw
    except UnicodeDecodeError:
        raise InputError(file, "file", "is not UTF-8 text", "save the study file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(file, "TOML", str(exc), "fix the TOML syntax (https://toml.io)") from None


def load_study(target: str | Path, *, quick: bool = False) -> Study:
    """The study ``target`` names (a file, or a bundled study's name), checked; with ``quick``
    its ``[quick]`` overrides applied. Both variants are checked either way."""
    file = find_study(target)
    data, raw = read_toml(file)
    shown = Path(target) if Path(target).is_file() else file
    sha = hashlib.sha256(raw).hexdigest()
    top = _Reader(shown, data, (), set())
    version = top.get("schema", int, "a schema number", str(SCHEMA))
    if version != SCHEMA:
        raise top.fail("schema", f"is {version}; this dispatchbench reads schema {SCHEMA}", f"write schema = {SCHEMA}")
    top.done(TOP_KEYS)
    overrides = top.table("quick", default=None)
    base = {k: v for k, v in data.items() if k != "quick"}
    full = _study(shown, file.parent, sha, base, set(), quick=False)
    if overrides is None:
        if quick:
            raise InputError(
                shown, "[quick]", "missing: --quick needs the study's overrides", "add [quick] or drop --quick"
            )
        return full
    overrides.done(QUICK_KEYS)
    seen: set[tuple] = set()
    merged = _merge(base, overrides.data, (), seen)
    fast = _study(shown, file.parent, sha, merged, seen, quick=True)
    return fast if quick else full


def _study(file: Path, folder: Path, sha: str, data: dict[str, Any], quick_paths: set, *, quick: bool) -> Study:
    top = _Reader(file, data, (), quick_paths)
    head = top.table("study")
    assert head is not None
    name = head.text("name", '"my-study"')
    _check_folder_name(head, "name", name)
    kind = head.text("kind", '"scaling"')
    if kind not in KINDS:
        raise head.fail("kind", f"is {kind!r}, not a kind of study", f"use one of: {', '.join(KINDS)}")
    description = head.get("description", str, "text", '"what the study asks"', "")
    report = head.text("report", '"my-study"', name)
    _check_folder_name(head, "report", report)
    baseline = head.text("baseline", '"name[key=value]"', None)
    head.done(("name", "kind", "description", "report", "baseline"))

    run = _run(top.table("run", default={}))
    methods = _methods(top, kind)
    tests = _test_states(top.table("test_states", default=None))
    study: dict[str, Any] = {}
    if kind == "paper":
        for key in ("generate", "instances"):
            if top.has(key):
                raise top.fail(key, "is not part of a paper study", 'remove it, or set kind = "scaling"')
        problem_table = top.table("problem")
        assert problem_table is not None
        study["problem"] = _problem_cases(problem_table, folder)
        if baseline is None:
            raise head.fail(
                "baseline", "missing: the improvement column needs a reference", "add baseline = a listed method's spec"
            )
        _check_baseline(head, baseline, methods)
    else:
        if top.has("problem"):
            raise top.fail("problem", "is not part of a scaling study", "use [generate] or [[instances]] instead")
        if baseline is not None:  # optional: the method every row is also compared with ('vs baseline %')
            baseline = _check_baseline(head, baseline, methods)
        if top.has("generate") and top.has("instances"):
            raise top.fail("instances", "and [generate] both give the instances", "keep one of them")
        if not top.has("generate") and not top.has("instances"):
            raise top.fail(
                None,
                "a scaling study needs [generate] (sizes to generate) or [[instances]] (your problem files)",
                "add [generate] with regions = [4, 8], or [[instances]] with problem = and states =",
            )
        if top.has("generate"):
            gen = top.table("generate")
            assert gen is not None
            study["generate"] = _generated(gen)
            if tests is None:
                raise top.fail("test_states", "missing: generated instances need test states", "add [test_states]")
        else:
            study["instances"] = _instances(top, folder, with_test_states=tests is not None)
    top.done(TOP_KEYS)
    return Study(
        file=file,
        sha256=sha,
        name=name,
        kind=kind,
        description=description,
        report=report,
        quick=quick,
        run=run,
        methods=methods,
        baseline=baseline,
        test_states=tests,
        **study,
    )


def _check_folder_name(table: _Reader, key: str, value: str) -> None:
    from dispatchbench.report.document import REPORT_NAME

    if not REPORT_NAME.fullmatch(value) or ".." in value:
        raise table.fail(key, f"{value!r} is not a plain folder name", f"use {NAME_CHARS}; no '/' and no '..'")


def _run(table: _Reader | None) -> RunSettings:
    from dispatchbench.bench.executors import EXECUTORS
    from dispatchbench.contract.limits import MAX_TIMEOUT_S

    assert table is not None
    timeout = table.get("timeout", (int, float), "a number of seconds", "60", RunSettings.timeout_s)
    if not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT_S):
        raise table.fail("timeout", f"is {timeout}, outside (0, {MAX_TIMEOUT_S:g}] seconds", "write e.g. timeout = 60")
    executor = table.text("executor", '"local"', "local")
    if executor not in EXECUTORS:
        raise table.fail("executor", f"is {executor!r}, not an executor", f"use one of: {', '.join(EXECUTORS)}")
    jobs = table.integer("jobs", 1, 1024, "2", None)
    scheduler = table.text("scheduler", '"tcp://host:8786"', None)
    if scheduler is not None and executor != "dask":
        raise table.fail("scheduler", "needs the Dask executor", 'add executor = "dask"')
    table.done(("timeout", "executor", "jobs", "scheduler"))
    return RunSettings(float(timeout), executor, jobs, scheduler)


def _methods(top: _Reader, kind: str) -> tuple[Method, ...]:
    from dispatchbench.bench.plugins import parse_spec
    from dispatchbench.contract.limits import SEED_MAX

    example = '[[methods]] with spec = "name[key=value]"'
    out: list[Method] = []
    seen: dict[str, str] = {}
    for entry in top.tables("methods", example):
        spec = entry.text("spec", '"name[key=value]"').strip()
        try:
            name, params = parse_spec(spec)
        except SolverNotFound as exc:
            raise entry.fail("spec", str(exc), 'write "name" or "name[key=value,...]"') from None
        if "model" in params:
            raise entry.fail("spec", "names a model folder", "remove model=...: the study trains its own models")
        if spec in seen:
            raise entry.fail("spec", f"{spec!r} is listed twice (also {seen[spec]})", "keep one entry per spec")
        seen[spec] = entry.name()
        seeds = entry.integers("seeds", 0, SEED_MAX, "[0, 1, 2]", (0,))
        steps = _train_steps(entry, kind)
        any_size = _any_size(entry, kind)
        if any_size is not None and steps is not None:
            raise entry.fail("train", "and train_steps both say how to train", "keep one of them")
        skip_reason = entry.text("skip_reason", '"too large to train in the budget"', "")
        if skip_reason and not isinstance(steps, Mapping):
            raise entry.fail("skip_reason", "needs train_steps per size", "give train_steps = { 4 = 1500, ... }")
        variants = entry.get("variants", list, "a list of parameter texts", '["refine=3"]', [])
        for v in variants:
            if not isinstance(v, str) or not v.strip():
                raise entry.fail("variants", f"holds {_shown(v)}, not parameters", 'write e.g. variants = ["refine=3"]')
            try:
                _, extra = parse_spec(f"{name}[{v}]")
            except SolverNotFound as exc:
                raise entry.fail("variants", str(exc), 'write key=value[,key=value], e.g. "refine=3"') from None
            if set(extra) & set(params) or "model" in extra:
                raise entry.fail("variants", f"{v!r} sets a parameter the spec sets", "give each parameter once")
        if variants and steps is None and any_size is None:
            raise entry.fail("variants", "need train_steps", "variants rerun a trained model: give train_steps")
        budgets = _budgets(entry, steps is not None or any_size is not None)
        budget_of = entry.text("budget_of", '"madrl_tvc"', "").strip() if budgets else ""
        entry.done(("spec", "seeds", "train_steps", "train", "skip_reason", "variants", "budgets", "budget_of"))
        out.append(
            Method(
                spec,
                seeds,
                steps,
                skip_reason,
                tuple(v.strip() for v in variants),
                entry.name(),
                budgets,
                budget_of,
                any_size,
            )
        )
    learners = {m.spec for m in out if m.trains}
    for m, entry in zip(out, top.tables("methods", example)):
        if m.budgets and m.budget_of not in learners:
            raise entry.fail(
                "budget_of",
                f"{m.budget_of!r} is not a trained method of this study",
                f"name one of: {', '.join(sorted(learners)) or '(none: add a learner with train_steps)'}",
            )
    return tuple(out)


def _budgets(entry: _Reader, trains: bool) -> tuple[float, ...]:
    """``budgets = [1, 10, 100]``: multiples of a learner's online decision time, for a method
    that does not learn, with ``budget_of`` naming the learner."""
    if not entry.has("budgets"):
        if entry.has("budget_of"):
            raise entry.fail("budget_of", "without budgets", "add budgets = [1, 10, 100] or remove budget_of")
        return ()
    if trains:
        raise entry.fail("budgets", "are for classical methods", "remove budgets from a trained method")
    values = entry.get("budgets", list, "a list of multiples", "[1, 10, 100]")
    if not values or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1e6 and math.isfinite(v) for v in values
    ):
        raise entry.fail("budgets", f"is {_shown(values)}, not positive multiples", "write e.g. budgets = [1, 10, 100]")
    if len(set(values)) != len(values):
        raise entry.fail("budgets", "lists a multiple twice", "give each multiple once")
    if not entry.has("budget_of"):
        raise entry.fail("budgets", "need budget_of", 'name the learner, e.g. budget_of = "madrl_tvc"')
    return tuple(float(v) for v in sorted(values))


def _train_steps(entry: _Reader, kind: str) -> int | dict[int, int] | None:
    from dispatchbench.instances.generate_problem import MAX_REGIONS

    if not entry.has("train_steps"):
        return None
    value = entry.get("train_steps", (int, dict), "a number of steps or a table of steps per size", "1500")
    if isinstance(value, int):
        if value < 1:
            raise entry.fail("train_steps", f"is {value}, not a number of steps", "write e.g. train_steps = 1500")
        return value
    if kind != "scaling":
        raise entry.fail("train_steps", "per size is for scaling studies", "write one number, e.g. train_steps = 1500")
    if not value:
        raise entry.fail("train_steps", "is an empty table", "write e.g. train_steps = { 4 = 1500, 8 = 600 }")
    out = {}
    for size, steps in value.items():
        if not size.isdecimal() or not 1 <= int(size) <= MAX_REGIONS:
            raise entry.fail("train_steps", f"key {size!r} is not a number of regions", "write e.g. { 4 = 1500 }")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise entry.fail("train_steps", f"{size} = {_shown(steps)} is not a number of steps", "e.g. { 4 = 1500 }")
        out[int(size)] = steps
    return out


def _any_size(entry: _Reader, kind: str) -> AnySize | None:
    """``train = { generated = [4, 8, 16, 32], budget = "15m", steps = 5000 }``."""
    from dispatchbench.contract.training import parse_duration
    from dispatchbench.instances.generate_problem import MAX_REGIONS

    table = entry.table("train", default=None)
    if table is None:
        return None
    if kind != "scaling":
        raise entry.fail("train", "(one model for any size) is for scaling studies", "give train_steps = N")
    example = '{ generated = [4, 8, 16, 32], budget = "15m" }'
    sizes = table.integers("generated", 1, MAX_REGIONS, "[4, 8, 16, 32]")
    seconds = None
    if table.has("budget"):
        text = table.get("budget", (str, int, float), "a wall time", '"15m"')
        try:
            seconds = parse_duration(str(text))
        except ValueError as exc:
            raise table.fail("budget", str(exc).split(" — fix: ")[0], 'give e.g. budget = "15m"') from None
    steps = table.integer("steps", 1, 10**9, "5000", None)
    table.done(("generated", "budget", "steps"))
    if seconds is None and steps is None:
        raise entry.fail("train", "needs budget or steps", f"write train = {example}")
    return AnySize(tuple(sizes), seconds, steps)


def _check_baseline(head: _Reader, baseline: str, methods: tuple[Method, ...]) -> str:
    """The improvement column needs one method that runs as one spec: a listed spec, or the solver
    name of exactly one listed method that does not train (a trained method is one spec per model).
    Returns that method's spec."""
    from dispatchbench.bench.plugins import parse_spec

    plain = [m for m in methods if not m.trains]
    if any(m.spec == baseline for m in plain):
        return baseline
    named = [m for m in plain if parse_spec(m.spec)[0] == baseline]
    if len(named) == 1:
        return named[0].spec
    listed = ", ".join(repr(m.spec) for m in plain) or "(none)"
    problem = "matches several methods" if named else "is not a method of the study that runs as one spec"
    raise head.fail("baseline", f"{baseline!r} {problem}", f"use one of: {listed}")


def _test_states(table: _Reader | None) -> TestStates | None:
    from dispatchbench.instances.protocol import SPLITS

    if table is None:
        return None
    split = table.text("split", '"test"', "test")
    if split not in SPLITS:
        raise table.fail("split", f"is {split!r}, not a split of the protocol", f"use one of: {', '.join(SPLITS)}")
    stride = table.integer("stride", 1, INTERVALS_PER_DAY, "4", 1)
    intervals = table.integers("intervals", 0, INTERVALS_PER_DAY - 1, "[8, 72]", ())
    if intervals and table.has("stride"):
        raise table.fail("intervals", "and stride both pick intervals", "keep one of them")
    random = table.integer("random", 0, 100_000, "30", 0)
    split_seeds = SPLITS[split]
    replicate = table.integer("replicate", 0, split_seeds.last - split_seeds.first, "1", 0)
    table.done(("split", "stride", "intervals", "random", "replicate"))
    return TestStates(split, stride, tuple(intervals), random, replicate)


def _input_file(table: _Reader, key: str, value: str, folder: Path) -> Path:
    """A file named in the study: relative to the study file's folder, else a bundled problem or
    state file by its name (as everywhere else)."""
    given = Path(value)
    candidate = given if given.is_absolute() else folder / given
    if candidate.is_file():
        return candidate.resolve()
    if given.parent.name in ("", "problems") and (problems_dir() / given.name).is_file():
        return problems_dir() / given.name
    raise table.fail(
        key,
        f"{value!r} not found (paths are relative to the study file's folder {folder})",
        f"give an existing file, or the name of a bundled one in {problems_dir()}",
    )


def _files(table: _Reader, key: str, folder: Path, example: str, default: Any = ...) -> tuple[Path, ...]:
    value = table.get(key, (str, list), "a file name or a list of them", example, default)
    if value is default:
        return default
    names = [value] if isinstance(value, str) else value
    if not names:
        raise table.fail(key, "is an empty list", f"write e.g. {key} = {example}")
    for v in names:
        if not isinstance(v, str) or not v.strip():
            raise table.fail(key, f"holds {_shown(v)}, not a file name", f"write e.g. {key} = {example}")
    return tuple(_input_file(table, key, v, folder) for v in names)


def _problem_cases(table: _Reader, folder: Path) -> ProblemCases:
    from dispatchbench.model.problem_file import load_problem
    from dispatchbench.model.state_file import load_states

    file = _input_file(table, "file", table.text("file", '"paper-4region.toml"'), folder)
    cases = _files(table, "cases", folder, '["my-state.csv", "my-day.csv"]')
    state = table.text("state", '"tableIV"')
    table.done(("file", "cases", "state"))
    problem = load_problem(file)
    labels = {s.label for path in cases for s in load_states(path, problem)}
    if state not in labels:
        raise table.fail("state", f"{state!r} is no state of the cases", f"use one of: {', '.join(sorted(labels)[:8])}")
    return ProblemCases(file, cases, state)


def _generated(table: _Reader) -> Generated:
    from dispatchbench.instances.generate_problem import MAX_REGIONS, MIN_REGIONS
    from dispatchbench.instances.protocol import SPLITS

    regions = table.integers("regions", MIN_REGIONS, MAX_REGIONS, "[4, 8]")
    split = table.text("split", '"test"', "test")
    if split not in SPLITS:
        raise table.fail("split", f"is {split!r}, not a split of the protocol", f"use one of: {', '.join(SPLITS)}")
    commitment = table.get("commitment", bool, "true or false", "true", True)
    seeds = SPLITS[split]
    replicate = table.integer("replicate", 0, seeds.last - seeds.first, "1", 0)
    table.done(("regions", "split", "commitment", "replicate"))
    return Generated(tuple(regions), split, commitment, replicate)


def _instances(top: _Reader, folder: Path, *, with_test_states: bool) -> tuple[Instance, ...]:
    from dispatchbench.model.problem_file import load_problem
    from dispatchbench.model.state_file import load_states

    out: list[Instance] = []
    names: set[str] = set()
    for entry in top.tables("instances", '[[instances]] with problem = "my.toml", states = "my-states.csv"'):
        problem = _input_file(entry, "problem", entry.text("problem", '"my-problem.toml"'), folder)
        states = _files(entry, "states", folder, '"my-states.csv"', ())
        if not states and not with_test_states:
            raise entry.fail("states", "missing (and the study has no [test_states])", 'add states = "my-states.csv"')
        name = entry.text("name", '"site-a"', problem.stem)
        _check_folder_name(entry, "name", name)
        if name in names:
            raise entry.fail("name", f"{name!r} is used twice", "give each instance its own name")
        if name == INSTANCE_FILES:
            raise entry.fail("name", f"{name!r} is the folder of the study's input files", "choose another name")
        names.add(name)
        entry.done(("name", "problem", "states"))
        loaded = load_problem(problem)
        for path in states:
            load_states(path, loaded)
        out.append(Instance(name, problem, states))
    return tuple(out)
