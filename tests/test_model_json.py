"""``model.json`` is data from anywhere: every field is checked before any tensor is built.

Issue 20 found fields of the wrong type, size or sign (``q_hidden``, ``group_order``, ``seed``,
``rounds=NaN``, ``moves=-5``) reaching torch or NumPy as tracebacks, or accepted. Each case here
edits one field of a real trained model and must end as one line naming ``model.json`` and the
field, exit status 2, at ``solve``, ``train --resume`` and (when no problem is needed) as soon
as the spec is parsed. The ranges are the learners' own declared ones (no second list).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dispatchbench.bench.plugins import discover, make_solver
from dispatchbench.cli import main
from dispatchbench.learn.checkpoints import CHECKPOINT_FILE, META_FILE
from dispatchbench.model.errors import SolverNotFound

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "problems" / "paper-4region.toml"
TABLE_IV = ROOT / "problems" / "paper-4region-tableIV.csv"
# each learner's own tiny settings (the contract's test_settings), so the fixture follows them
TINY = {name: discover()[name](**discover()[name].test_settings).spec for name in ("maddpg", "madrl_tvc")}
# a hyper-parameter of each kind, per learner: (a width, a count that may be 0, a float, a choice)
WIDTH = {"madrl_tvc": "q_hidden", "maddpg": "actor_hidden"}
MAY_BE_ZERO = {"madrl_tvc": "moves", "maddpg": "learning_starts"}
REAL = {"madrl_tvc": "q_lr", "maddpg": "actor_lr"}


@pytest.fixture(scope="module", params=sorted(TINY))
def trained(request, tmp_path_factory) -> tuple[str, Path]:
    from dispatchbench import load_problem

    out = tmp_path_factory.mktemp(request.param)
    make_solver(TINY[request.param]).fit(load_problem(PAPER), seed=0, steps=2, out_dir=out)
    return request.param, out


def run_main(capsys, monkeypatch, *args: Any) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["dispatchbench", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    return info.value.code, out, err


def assert_one_line_exit_2(result: tuple[int, str, str], *needles: str) -> None:
    code, _, err = result
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


def edited(src: Path, dst: Path, edit: Callable[[dict], Any] | None = None, text: str | None = None) -> Path:
    """A copy of the model in ``src`` whose model.json is ``edit``-ed (or replaced by ``text``)."""
    dst.mkdir(parents=True, exist_ok=True)
    (dst / CHECKPOINT_FILE).write_bytes((src / CHECKPOINT_FILE).read_bytes())
    if text is None:
        meta = json.loads((src / META_FILE).read_text())
        edit(meta)
        text = json.dumps(meta)
    (dst / META_FILE).write_text(text)
    return dst


def hp(key: str | dict, value: Any) -> Callable[[str], Callable[[dict], Any]]:
    """An edit setting one hyper-parameter (``key`` may depend on the learner)."""
    return lambda name: lambda m: m["hyperparameters"].__setitem__(key if isinstance(key, str) else key[name], value)


def top(key: str, value: Any) -> Callable[[str], Callable[[dict], Any]]:
    return lambda name: lambda m: m.__setitem__(key, value)


# (edit, the words the line must hold); each checked when the spec is parsed, on solve and on resume
PARSE_CASES = {
    "seed 2**70": (top("seed", 2**70), "seed"),
    "seed -1": (top("seed", -1), "seed"),
    "seed 1.5": (top("seed", 1.5), "seed"),
    "seed true": (top("seed", True), "seed"),
    "steps -5": (top("steps", -5), "steps"),
    "steps 10**12": (top("steps", 10**12), "steps"),
    "fingerprint not hex": (top("problem_fingerprint", "x" * 16), "problem_fingerprint"),
    "train_time_s negative": (top("train_time_s", -1.0), "train_time_s"),
    "group_order not a list": (top("group_order", "FDC1"), "group_order"),
    "group_order of numbers": (top("group_order", [1, 2]), "group_order"),
    "group_order repeats": (top("group_order", ["FDC1", "FDC1"]), "group_order"),
    "solver name 10k long": (top("spec", "x" * 10_000), "spec"),
    "versions a list": (top("versions", [1]), "versions"),
    "width 10**9": (hp(WIDTH, 10**9), "hyperparameters.", "outside [1, 4096]"),
    "width 64.0": (hp(WIDTH, 64.0), "hyperparameters.", "whole number"),
    "width true": (hp(WIDTH, True), "hyperparameters.", "not a number"),
    "width text": (hp(WIDTH, "64"), "hyperparameters.", "not a number"),
    "count -5": (hp(MAY_BE_ZERO, -5), "hyperparameters.", "outside"),
    "rate 0": (hp(REAL, 0.0), "hyperparameters.", "outside"),
    "rate 1e300": (hp(REAL, 1e300), "hyperparameters.", "outside"),
    "rate 10**400": (hp(REAL, 10**400), "hyperparameters.", "not a finite number"),
    "width 10**400": (hp(WIDTH, 10**400), "hyperparameters.", "outside"),
    "unknown hyper-parameter": (hp("warp_drive", 1), "hyperparameters: unknown warp_drive"),
}


# Every case is checked when the spec is parsed (in process, milliseconds); solve and resume go
# through the same check inside a plugin process (seconds each), so CI runs them on one case per
# kind of field and -m slow on all of them.
THROUGH_THE_CLI = {"seed -1", "fingerprint not hex", "group_order repeats", "width 10**9", "unknown hyper-parameter"}


@pytest.mark.parametrize("case", sorted(PARSE_CASES))
def test_a_bad_field_is_refused_when_the_spec_is_parsed(trained, case, tmp_path):
    name, folder = trained
    edit, *needles = PARSE_CASES[case]
    bad = edited(folder, tmp_path / "bad", edit(name))
    with pytest.raises(SolverNotFound, match=META_FILE) as info:  # before any work
        make_solver(f"{name}[model={bad}]")
    for needle in needles:
        assert needle in str(info.value)


@pytest.mark.parametrize(
    "case", [c if c in THROUGH_THE_CLI else pytest.param(c, marks=pytest.mark.slow) for c in sorted(PARSE_CASES)]
)
def test_a_bad_field_is_one_line_at_solve_and_resume(trained, case, tmp_path, capsys, monkeypatch):
    name, folder = trained
    edit, *needles = PARSE_CASES[case]
    bad = edited(folder, tmp_path / "bad", edit(name))
    spec = f"{name}[model={bad}]"
    assert_one_line_exit_2(
        run_main(capsys, monkeypatch, "solve", "-p", PAPER, "-s", TABLE_IV, "--solver", spec), *needles
    )
    resume = ("train", "-p", PAPER, "--solver", name, "--steps", 4, "--out", bad, "--resume", "--no-progress")
    assert_one_line_exit_2(run_main(capsys, monkeypatch, *resume), META_FILE, *needles)


def test_learner_specific_values(trained, tmp_path):
    """NaN written into the file, a moves/rounds count past its cap, a choice that is not one."""
    name, folder = trained
    text = (folder / META_FILE).read_text()
    key = REAL[name]
    meta = json.loads(text)
    nan_text = text.replace(f'"{key}": {json.dumps(meta["hyperparameters"][key])}', f'"{key}": NaN')
    assert nan_text != text
    with pytest.raises(SolverNotFound, match="NaN"):
        make_solver(f"{name}[model={edited(folder, tmp_path / 'nan', text=nan_text)}]")
    if name == "madrl_tvc":
        for field, value in (("rounds", 0), ("moves", 10**9), ("table_points", 10**9), ("search_iterations", 10**6)):
            bad = edited(folder, tmp_path / field, hp(field, value)(name))
            with pytest.raises(SolverNotFound, match=f"hyperparameters.{field}"):
                make_solver(f"{name}[model={bad}]")
    else:
        bad = edited(folder, tmp_path / "shift", hp("shift", "sideways")(name))
        with pytest.raises(SolverNotFound, match="hyperparameters.shift.*not one of kw, range"):
            make_solver(f"{name}[model={bad}]")


@pytest.mark.parametrize(
    "text, needle",
    [
        ('{"a": ' * 100_000 + "1" + "}" * 100_000, "nested too deeply"),
        ('{"seed": ' + "9" * 5000 + "}", "not a model.json dispatchbench wrote"),
        ('{"seed": Infinity}', "Infinity"),
    ],
    ids=["deep nesting", "a 5000-digit number", "Infinity"],
)
def test_hostile_json_is_one_line(trained, tmp_path, text, needle, capsys, monkeypatch):
    name, folder = trained
    bad = edited(folder, tmp_path / "bad", text=text)
    with pytest.raises(SolverNotFound, match=needle):
        make_solver(f"{name}[model={bad}]")
    spec = f"{name}[model={bad}]"
    assert_one_line_exit_2(
        run_main(capsys, monkeypatch, "solve", "-p", PAPER, "-s", TABLE_IV, "--solver", spec), needle
    )


def test_an_oversized_model_json_is_refused_without_reading_it_all(trained, tmp_path):
    name, folder = trained
    bad = edited(folder, tmp_path / "big", text="")
    with (bad / META_FILE).open("wb") as handle:
        handle.truncate(64 * 2**20)  # sparse: 64 MiB of zeros
    with pytest.raises(SolverNotFound, match="larger than 16 MiB"):
        make_solver(f"{name}[model={bad}]")


@pytest.mark.parametrize(
    "edit, needle",
    [
        (top("group_order", ["FDC1"]), "group_order does not list the problem's 9 groups"),
        (top("region_order", ["A", "B", "C", "Z"]), "region_order does not list the problem's 4 regions"),
    ],
    ids=["group_order short", "region_order foreign"],
)
def test_orders_must_be_permutations_of_the_problem(trained, tmp_path, edit, needle, capsys, monkeypatch):
    """Checked once the problem is known: at solve and at resume (the fingerprint matches)."""
    name, folder = trained
    bad = edited(folder, tmp_path / "bad", edit(name))
    make_solver(f"{name}[model={bad}]")  # the spec alone cannot tell
    spec = f"{name}[model={bad}]"
    assert_one_line_exit_2(
        run_main(capsys, monkeypatch, "solve", "-p", PAPER, "-s", TABLE_IV, "--solver", spec), needle
    )
    resume = ("train", "-p", PAPER, "--solver", name, "--steps", 4, "--out", bad, "--resume", "--no-progress")
    assert_one_line_exit_2(run_main(capsys, monkeypatch, *resume), needle)


def test_a_bad_model_is_one_line_on_run(trained, tmp_path, capsys, monkeypatch):
    name, folder = trained
    bad = edited(folder, tmp_path / "bad", hp(WIDTH, 10**9)(name))
    result = run_main(
        capsys, monkeypatch, "run", "-p", PAPER, "-s", TABLE_IV, "--solvers", f"{name}[model={bad}]",
        "--out", tmp_path / "run", "--timeout", 60,
    )  # fmt: skip
    assert_one_line_exit_2(result, META_FILE, "hyperparameters.")


def test_the_valid_model_still_loads(trained, capsys, monkeypatch):
    name, folder = trained
    code, out, err = run_main(
        capsys, monkeypatch, "solve", "-p", PAPER, "-s", TABLE_IV, "--solver", f"{name}[model={folder}]", "--json"
    )
    assert code in (0, None), err
    assert json.loads(out.splitlines()[0])["status"] in ("optimal", "feasible", "infeasible")


def test_spec_caps_stop_runaway_values():
    for spec in ("madrl_tvc[q_hidden=1000000000]", "madrl_tvc[refine=1000000000]", "maddpg[critic_hidden=100000]"):
        with pytest.raises(SolverNotFound, match="outside"):
            make_solver(spec)
