"""Split and replicate on every results row (issue 18, item 6): from ``generate states``'s sidecar,
from ``run --split/--replicate``, refused when stale or wrong, and named in tables as a reader
should read them ("development test" for seed 2000)."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from dispatchbench.bench.harness import run_benchmark
from dispatchbench.cli import main
from dispatchbench.instances.provenance import Provenance, describe, read_sidecar, sidecar_path
from dispatchbench.model.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
PROBLEM = ROOT / "problems" / "paper-4region.toml"
TABLE_IV = ROOT / "problems" / "paper-4region-tableIV.csv"


def cli(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["dispatchbench", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    return (0 if info.value.code is None else info.value.code), out, err


def test_seeds_map_to_splits_and_replicates():
    assert Provenance.of_seed(2000) == Provenance("test", 0, 2000)
    assert Provenance.of_seed(2001) == Provenance("test", 1, 2001)
    assert Provenance.of_seed(1003) == Provenance("validation", 3, 1003)
    assert Provenance.of_seed(7) == Provenance("training", 7, 7)
    assert Provenance.of_seed(4000) == Provenance("none", None, 4000)
    assert describe("test", 0) == "development test" and describe("test", 1) == "test replicate 1"
    assert describe("reported", None) == "reported case" and describe(None, None) == "—"
    assert describe("validation", 2) == "validation replicate 2"
    for bad in (("dev", None), ("reported", 1), ("test", -1), ("test", 1000)):
        with pytest.raises(ValueError):
            Provenance(*bad)


def test_generate_states_writes_a_sidecar_run_reads_it_onto_every_row(tmp_path, capsys, monkeypatch):
    states = tmp_path / "test.csv"
    code, out, err = cli(
        capsys, monkeypatch, "generate", "states", "-p", str(PROBLEM), "--family", "random", "--count", "2",
        "--seed", "2001", "--out", str(states),
    )  # fmt: skip
    assert code == 0, err
    assert "test replicate 1" in out and sidecar_path(states).is_file()
    assert read_sidecar(states) == Provenance("test", 1, 2001)
    run_benchmark(PROBLEM, [states, TABLE_IV], "scip", [0], tmp_path / "out", progress=False,
                  provenance={TABLE_IV: Provenance("reported")})  # fmt: skip
    frame = pd.read_parquet(tmp_path / "out" / "results.parquet")
    generated = frame[frame["state"] != "tableIV"]
    assert len(generated) == 2 and (generated["split"] == "test").all() and (generated["replicate"] == 1).all()
    reported = frame[frame["state"] == "tableIV"].iloc[0]
    assert reported["split"] == "reported" and pd.isna(reported["replicate"])


def test_run_split_option_and_no_claim_without_one(tmp_path, capsys, monkeypatch):
    code, _, err = cli(
        capsys, monkeypatch, "run", "-p", str(PROBLEM), "-s", str(TABLE_IV), "--solvers", "scip",
        "--out", str(tmp_path / "a"), "--no-progress", "--split", "reported",
    )  # fmt: skip
    assert code == 0, err
    assert pd.read_parquet(tmp_path / "a" / "results.parquet")["split"].tolist() == ["reported"]
    run_benchmark(PROBLEM, [TABLE_IV], "scip", [0], tmp_path / "b", progress=False)
    row = pd.read_parquet(tmp_path / "b" / "results.parquet").iloc[0]
    assert pd.isna(row["split"]) and pd.isna(row["replicate"])  # nothing said, nothing claimed


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--replicate", "1"), "needs --split"),
        (("--split", "dev"), "is not one of"),
        (("--split", "reported", "--replicate", "0"), "a replicate belongs to"),
        (("--split", "test", "--replicate", "5000"), "outside seeds"),
    ],
)
def test_bad_split_options_are_one_line(tmp_path, capsys, monkeypatch, args, says):
    code, _, err = cli(
        capsys, monkeypatch, "run", "-p", str(PROBLEM), "-s", str(TABLE_IV), "--solvers", "scip",
        "--out", str(tmp_path / "o"), "--no-progress", *args,
    )  # fmt: skip
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1 and "fix:" in err
    assert not (tmp_path / "o" / "results.parquet").exists()


def test_a_stale_or_broken_sidecar_is_refused_naming_it(tmp_path, capsys, monkeypatch):
    states = tmp_path / "s.csv"
    code, _, err = cli(
        capsys, monkeypatch, "generate", "states", "-p", str(PROBLEM), "--family", "random", "--count", "1",
        "--seed", "2000", "--out", str(states),
    )  # fmt: skip
    assert code == 0, err
    states.write_text(states.read_text().replace("random_0", "edited"))
    with pytest.raises(InputError, match=r"s\.csv\.provenance\.json: states_sha256: describes other content"):
        read_sidecar(states)
    sidecar_path(states).write_text("{not json")
    with pytest.raises(InputError, match="not JSON"):
        run_benchmark(PROBLEM, [states], "scip", [0], tmp_path / "out", progress=False)


def test_the_study_files_test_replicate(tmp_path, paper):
    from dispatchbench.instances.protocol import split_states
    from dispatchbench.report.study_file import find_study, load_study

    bundled = find_study("paper")
    fresh = load_study(bundled).test_states
    assert fresh.replicate == 6 and fresh.seed == 2006  # the released models' fresh test replicate
    assert load_study(bundled, quick=True).test_states.seed == 2000  # a smoke run reads the development test
    text = bundled.read_text()
    drawn = fresh.draw(paper)
    assert drawn == split_states(paper, "test", stride=fresh.stride, random_count=fresh.random, replicate=6)
    (tmp_path / "dev.toml").write_text(text.replace("replicate = 6\n", "replicate = 0\n"))
    development = load_study(tmp_path / "dev.toml").test_states
    assert development.seed == 2000 and drawn != development.draw(paper)
    (tmp_path / "bad.toml").write_text(text.replace("replicate = 6\n", "replicate = -1\n"))
    with pytest.raises(InputError, match="replicate"):
        load_study(tmp_path / "bad.toml")
