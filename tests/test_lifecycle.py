"""The training lifecycle both learners share, and model folders as untrusted data.

A model folder is something people download and pass around, so each way it can be wrong —
garbage ``model.json``, a pickle that runs code, a model of another problem, a folder that is not
there — must end as one line and exit status 2, before any work, and must run nothing.
"""

from __future__ import annotations

import builtins
import json
import pickle
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import dispatchbench
from dispatchbench.bench.model_cache import code_closure, code_sha256, model_key
from dispatchbench.bench.plugins import make_solver
from dispatchbench.cli import main
from dispatchbench.learn import lifecycle
from dispatchbench.learn.checkpoints import CHECKPOINT_FILE, META_FILE, ModelFileError, load_checkpoint
from dispatchbench.model.errors import SolverNotFound

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "problems" / "paper-4region.toml"
CONVEX = ROOT / "problems" / "paper-4region-convex.toml"
TABLE_IV = ROOT / "problems" / "paper-4region-tableIV.csv"
TINY = {
    "maddpg": "maddpg[learning_starts=2,batch_size=4,log_every=2,checkpoint_every=2]",
    "madrl_tvc": "madrl_tvc[states_per_step=1,search_rounds=1,max_flips=8,max_swaps=4,"
    "batch_size=4,updates_per_step=1,log_every=2,table_points=65]",
}


def run_main(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["dispatchbench", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    return info.value.code, out, err


def assert_one_line_exit_2(result: tuple[int, str, str], *needles: str) -> None:
    code, _, err = result
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err


@pytest.fixture(scope="module", params=sorted(TINY))
def trained(request, tmp_path_factory) -> tuple[str, Path]:
    """Each learner, trained for 3 steps on the paper's problem (with commitment)."""
    from dispatchbench import load_problem

    out = tmp_path_factory.mktemp(request.param)
    make_solver(TINY[request.param]).fit(load_problem(PAPER), seed=0, steps=3, out_dir=out)
    return request.param, out


def _copy_model(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for name in (META_FILE, CHECKPOINT_FILE):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


# ---- what a model folder holds -------------------------------------------------------------
def test_model_json_records_the_shared_fields(trained):
    name, folder = trained
    meta = json.loads((folder / META_FILE).read_text())
    assert {
        "format",
        "solver",
        "spec",
        "problem",
        "problem_fingerprint",
        "hyperparameters",
        "steps",
        "seed",
        "train_time_s",
        "versions",
    } <= set(meta)
    assert meta["solver"] == name and meta["problem"] == "paper-4region" and meta["steps"] == 3
    # the trained hyper-parameters, as a spec (share=auto / sharing=auto recorded as what it resolved
    # to: per agent; MADDPG's exploration schedule as the steps it spans: 0.6 of the 3-step budget)
    resolved = {"madrl_tvc": ",share=agent]", "maddpg": ",sharing=agent,explore_steps=2]"}
    expected = TINY[name][:-1] + resolved[name]
    assert meta["spec"] == make_solver(expected).spec
    assert make_solver(meta["spec"]).spec == meta["spec"]


def test_checkpoint_is_data_only_and_rng_states_travel_as_json(trained):
    _, folder = trained
    payload = torch.load(folder / CHECKPOINT_FILE, weights_only=True)  # tensors and plain containers only
    state = json.loads(payload["state"])
    assert {"numpy", "torch", "python"} <= set(state["rng"])
    assert set(state["rng"]["torch"]) == {"__tensor__"}  # torch's RNG state is a uint8 tensor
    assert all(isinstance(v, torch.Tensor) for v in payload["tensors"].values())


def test_rng_states_round_trip(tmp_path):
    generator = np.random.default_rng(5)
    random.seed(1), torch.manual_seed(2), generator.random(3)
    net = torch.nn.Linear(2, 1)
    state = {"rng": lifecycle.capture_rng({"g": generator}), "buffer": np.arange(6.0).reshape(3, 2)}
    meta = {"solver": "x", "problem": "p", "problem_fingerprint": "0123456789abcdef", "hyperparameters": {}, "seed": 0}
    lifecycle.save(tmp_path, step=7, networks={"net": net}, optimizers={}, state=state, meta=meta)
    expected = (random.random(), torch.rand(2), generator.random())
    random.seed(99), torch.manual_seed(99), generator.random(9)
    ckpt = load_checkpoint(tmp_path)
    lifecycle.restore_rng(ckpt.state["rng"], {"g": generator})
    assert (random.random(), torch.rand(2), generator.random())[0] == expected[0]
    assert ckpt.step == 7 and np.array_equal(ckpt.state["buffer"], state["buffer"])
    assert ckpt.state["buffer"].dtype == np.float64


def test_loaded_model_is_cached_per_folder_and_problem(trained):
    from dispatchbench import load_problem

    name, folder = trained
    paper, convex = load_problem(PAPER), load_problem(CONVEX)
    solver = make_solver(f"{name}[model={folder}]")
    assert solver.skip(paper) is None
    assert solver.load(paper) is solver.load(paper)  # read from disk once
    why = solver.skip(convex)  # same groups, commitment off: another fingerprint
    assert f"trained for problem 'paper-4region' (fingerprint {lifecycle.problem_fingerprint(paper)})" in why
    with pytest.raises(ModelFileError, match="paper-4region-convex"):
        solver.load(convex)


# ---- a crafted pickle runs nothing --------------------------------------------------------
class _CreatesFile:
    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return builtins.open, (self.path, "w")


def test_a_crafted_checkpoint_is_refused_and_runs_nothing(trained, tmp_path, capsys, monkeypatch):
    name, folder = trained
    evil = _copy_model(folder, tmp_path / "evil")
    marker = tmp_path / "pwned"
    torch.save({"format": 2, "step": 3, "payload": _CreatesFile(marker)}, evil / CHECKPOINT_FILE)
    # the payload is live: an unguarded unpickling would create the file
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_CreatesFile(probe))).close()
    assert probe.exists()

    why = make_solver(f"{name}[model={evil}]").skip(__import__("dispatchbench").load_problem(PAPER))
    assert "refused" in why and "could run code" in why and "\n" not in why
    assert_one_line_exit_2(
        run_main(capsys, monkeypatch, "solve", "-p", PAPER, "-s", TABLE_IV, "--solver", f"{name}[model={evil}]"),
        "refused",
        CHECKPOINT_FILE,
    )
    assert_one_line_exit_2(
        run_main(
            capsys,
            monkeypatch,
            "train",
            "-p",
            PAPER,
            "--solver",
            name,
            "--steps",
            5,
            "--out",
            evil,
            "--resume",
            "--no-progress",
        ),
        "refused",
    )
    assert not marker.exists()


# ---- bad model.json -----------------------------------------------------------------------
BAD_META = {
    "random bytes": bytes(range(256)) * 4,
    "invalid JSON": b'{"solver": "maddpg", ',
    "a list": b'["solver", "maddpg"]',
    "missing keys": b'{"format": 2, "solver": "SOLVER"}',
    "a pickled-format model": b'{"format": 1, "solver": "SOLVER"}',
    "a wrong type": b'{"format": 2, "solver": "SOLVER", "problem": "p", "problem_fingerprint": "f", '
    b'"hyperparameters": [], "steps": 1, "seed": 0}',
}


@pytest.mark.parametrize("case", sorted(BAD_META))
def test_bad_model_json_is_one_line_and_exit_2(trained, case, tmp_path, capsys, monkeypatch):
    name, folder = trained
    bad = _copy_model(folder, tmp_path / "bad")
    (bad / META_FILE).write_bytes(BAD_META[case].replace(b"SOLVER", name.encode()))
    with pytest.raises(SolverNotFound, match=META_FILE):  # when the spec is parsed, before any work
        make_solver(f"{name}[model={bad}]")
    assert_one_line_exit_2(
        run_main(capsys, monkeypatch, "solve", "-p", PAPER, "-s", TABLE_IV, "--solver", f"{name}[model={bad}]"),
        META_FILE,
    )
    assert_one_line_exit_2(
        run_main(
            capsys,
            monkeypatch,
            "train",
            "-p",
            PAPER,
            "--solver",
            name,
            "--steps",
            5,
            "--out",
            bad,
            "--resume",
            "--no-progress",
        ),
        META_FILE,
    )


def test_garbage_checkpoint_is_one_line(trained, tmp_path, capsys, monkeypatch):
    name, folder = trained
    bad = _copy_model(folder, tmp_path / "bad")
    (bad / CHECKPOINT_FILE).write_bytes(b"\x00garbage" * 100)
    assert_one_line_exit_2(
        run_main(
            capsys,
            monkeypatch,
            "train",
            "-p",
            PAPER,
            "--solver",
            name,
            "--steps",
            5,
            "--out",
            bad,
            "--resume",
            "--no-progress",
        ),
        "not a readable checkpoint",
    )


def test_a_model_of_another_problem_is_refused_on_solve_and_resume(trained, capsys, monkeypatch):
    name, folder = trained
    fingerprint = json.loads((folder / META_FILE).read_text())["problem_fingerprint"]
    needles = ("trained for problem 'paper-4region'", fingerprint)
    assert_one_line_exit_2(
        run_main(capsys, monkeypatch, "solve", "-p", CONVEX, "-s", TABLE_IV, "--solver", f"{name}[model={folder}]"),
        *needles,
    )
    assert_one_line_exit_2(
        run_main(
            capsys,
            monkeypatch,
            "train",
            "-p",
            CONVEX,
            "--solver",
            name,
            "--steps",
            5,
            "--out",
            folder,
            "--resume",
            "--no-progress",
        ),
        *needles,
    )
    other = "maddpg" if name == "madrl_tvc" else "madrl_tvc"
    assert_one_line_exit_2(
        run_main(
            capsys,
            monkeypatch,
            "train",
            "-p",
            PAPER,
            "--solver",
            other,
            "--steps",
            5,
            "--out",
            folder,
            "--resume",
            "--no-progress",
        ),
        f"trained by {name!r}",
    )


@pytest.mark.parametrize(
    "spec",
    [
        "madrl_tvc[model=/no/such/folder]",
        "maddpg[model=/no/such/folder]",
        "madrl_tvc[refine=-5]",
        "maddpg[actor_lr=-1]",
    ],
)
def test_bad_learner_specs_fail_when_parsed(spec, capsys, monkeypatch):
    assert_one_line_exit_2(run_main(capsys, monkeypatch, "solve", "-p", PAPER, "-s", TABLE_IV, "--solver", spec))
    assert_one_line_exit_2(
        run_main(
            capsys,
            monkeypatch,
            "train",
            "-p",
            PAPER,
            "--solver",
            spec,
            "--steps",
            5,
            "--out",
            "/tmp/never-written-dispatchbench",
            "--no-progress",
        )
    )
    assert not Path("/tmp/never-written-dispatchbench").exists()


def test_train_out_naming_a_file_is_one_line(tmp_path, capsys, monkeypatch):
    file = tmp_path / "file.txt"
    file.write_text("x")
    assert_one_line_exit_2(
        run_main(
            capsys,
            monkeypatch,
            "train",
            "-p",
            PAPER,
            "--solver",
            "maddpg",
            "--steps",
            5,
            "--out",
            file,
            "--no-progress",
        ),
        "is a file",
    )


def test_every_hyperparameter_is_a_cli_parameter_recorded_in_the_model(tmp_path, capsys, monkeypatch):
    out = tmp_path / "m"
    code, _, err = run_main(
        capsys,
        monkeypatch,
        "train",
        "-p",
        PAPER,
        "--solver",
        TINY["maddpg"].replace("]", ",actor_lr=5e-4,own_weight=0.2]"),
        "--steps",
        3,
        "--out",
        out,
        "--no-progress",
    )
    assert code == 0, err
    meta = json.loads((out / META_FILE).read_text())
    assert meta["hyperparameters"]["actor_lr"] == 5e-4 and meta["hyperparameters"]["own_weight"] == 0.2
    for name in ("madrl_tvc", "maddpg"):
        cls = type(make_solver(name))
        module = sys.modules[cls.__module__]
        assert set(module.Hyperparameters.__dataclass_fields__) <= set(cls.parameters)
        checked = set(cls.parameter_ranges) | set(getattr(cls, "parameter_choices", {}))  # numbers | named choices
        assert set(module.Hyperparameters.__dataclass_fields__) <= checked


# ---- the trained-model cache key ------------------------------------------------------------
def test_cache_key_covers_the_modules_a_learner_imports():
    cls = type(make_solver("madrl_tvc"))
    closure = code_closure(Path(sys.modules[cls.__module__].__file__), cls.__module__)
    for module in (
        "dispatchbench.learn.marl_env",
        "dispatchbench.formulations.distributed_search",
        "dispatchbench.learn.lifecycle",
        "dispatchbench.formulations.balancing",
    ):
        assert module in closure
    assert "dispatchbench.report.tables" not in closure  # only what it depends on
    key = model_key(PAPER, "maddpg", 0, 10)
    assert key.code_sha256 != model_key(PAPER, "madrl_tvc", 0, 10).code_sha256


def test_cache_key_covers_every_file_of_the_tvc_package():
    """MADRL-TVC's parts live in ``dispatchbench/learn/tvc/``: the key of a TVC model hashes
    every one of its files (a change to any part trains a new model)."""
    cls = type(make_solver("madrl_tvc"))
    closure = code_closure(Path(sys.modules[cls.__module__].__file__), cls.__module__)
    hashed = {path.resolve() for path in closure.values()}
    package = Path(dispatchbench.__file__).parent / "learn" / "tvc"
    files = sorted(package.glob("*.py"))
    assert len(files) >= 10 and [f.name for f in files if f.resolve() not in hashed] == []


def test_cache_key_covers_the_subpackages_a_module_lives_in(tmp_path, monkeypatch):
    """Importing ``pkg.deep.inner.mod`` runs ``pkg/deep/__init__.py`` and ``pkg/deep/inner/__init__.py``
    first: they are part of the key even when nothing imports them by name."""
    package = tmp_path / "fakepkg2"
    (package / "deep" / "inner").mkdir(parents=True)
    for init in (package, package / "deep", package / "deep" / "inner"):
        (init / "__init__.py").write_text("")
    (package / "plugin.py").write_text("from fakepkg2.deep.inner.mod import VALUE\n")
    (package / "deep" / "inner" / "mod.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def closure() -> dict[str, Path]:
        return code_closure(package / "plugin.py", "fakepkg2.plugin", package="fakepkg2")

    assert set(closure()) == {"fakepkg2.plugin", "fakepkg2.deep", "fakepkg2.deep.inner", "fakepkg2.deep.inner.mod"}
    first = code_sha256(closure())
    (package / "deep" / "inner" / "__init__.py").write_text("SETTING = 2\n")
    assert code_sha256(closure()) != first


def test_cache_key_changes_when_a_dependency_changes(tmp_path, monkeypatch):
    package = tmp_path / "fakepkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "plugin.py").write_text("from fakepkg.sub import env\n")
    (package / "sub" / "env.py").write_text("from . import search\nPENALTY = 50\n")
    (package / "sub" / "search.py").write_text("ITERATIONS = 40\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def digest() -> str:
        return code_sha256(code_closure(package / "plugin.py", "fakepkg.plugin", package="fakepkg"))

    first = digest()
    assert set(code_closure(package / "plugin.py", "fakepkg.plugin", package="fakepkg")) >= {
        "fakepkg.plugin",
        "fakepkg.sub.env",
        "fakepkg.sub.search",
    }
    (package / "sub" / "search.py").write_text("ITERATIONS = 41\n")  # two imports away
    assert digest() != first
