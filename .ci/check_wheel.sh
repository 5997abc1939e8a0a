#!/usr/bin/env bash
# Packaging check: what a user gets from `pip install dispatchbench-*.whl`, not from a checkout.
#
#   1. build the wheel from a clean copy of the working tree (tracked and new files, nothing
#      git ignores: a stale build/ folder cannot leak removed modules into the wheel);
#   2. check the wheel holds every module of every subpackage, the bundled plugins and every
#      bundled problem and study file;
#   3. install it with its [all] extra into a fresh venv (no --system-site-packages);
#   4. from an empty folder outside the checkout: `--version`, `solvers --json` (all eight
#      plugins), `solve` of the Table IV state with SCIP by bundled names (cost 4903.9687), and
#      the same through the Python API;
#   5. the README's example study (section "Studies"), copied into another empty folder and run
#      with `reproduce my-study.toml` (STUDY_QUICK=1 runs its --quick table instead, as .ci/run
#      does to stay within CI's 30 minutes: the same code from the wheel, about 2 minutes less;
#      SKIP_STUDY=1 leaves it out).
#
# Run alone:  .ci/check_wheel.sh        (KEEP=1 keeps the temporary folder for a look)
# 1-2 minutes on 2 cores with a warm pip cache (most of it pip), plus about 2 for the study;
# .ci/run calls it before the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
PY="${PYTHON:-python}"
if [ -d /opt/wheels ]; then export PIP_FIND_LINKS="${PIP_FIND_LINKS:-/opt/wheels}"; fi
export PIP_DISABLE_PIP_VERSION_CHECK=1

# The venv (~1.6 GB with torch) goes to RAM when /dev/shm has room: on a disk mounted with
# `discard` (these machines' ext4) deleting it alone took 2 minutes under load.
BASE="${WHEEL_CHECK_TMP:-}"
if [ -z "$BASE" ]; then
  BASE="${TMPDIR:-/tmp}"
  if [ -d /dev/shm ] && [ "$(df -Pk /dev/shm | awk 'NR==2 {print $4}')" -gt 4000000 ] 2>/dev/null; then BASE=/dev/shm; fi
fi
WORK="$(mktemp -d "$BASE/dispatchbench-wheel.XXXXXX")"
t0=$(date +%s)
stage() { echo "[check_wheel $(( $(date +%s) - t0 ))s] $*"; }
cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; stage "removed the venv"; fi
}
trap cleanup EXIT
die() { echo "check_wheel: FAILED: $*" >&2; exit 1; }

# 1. a clean copy of the source, then the wheel
mkdir -p "$WORK/src" "$WORK/dist" "$WORK/empty"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$ROOT" ls-files -z --cached --others --exclude-standard \
    | (cd "$ROOT" && tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$WORK/src"
else
  tar -C "$ROOT" --exclude=./build --exclude=./dist --exclude='*.egg-info' --exclude=./.git -cf - . | tar -xf - -C "$WORK/src"
fi
stage "building the wheel"
"$PY" -m pip wheel "$WORK/src" -w "$WORK/dist" --no-deps -q
WHEEL="$(ls "$WORK"/dist/dispatchbench-*.whl)"

# 2. the wheel's file list against the source tree
"$PY" - "$WHEEL" "$WORK/src" <<'EOF'
import sys, zipfile
from collections import Counter
from pathlib import Path

wheel, src = sys.argv[1], Path(sys.argv[2])
names = set(zipfile.ZipFile(wheel).namelist())
# package folder in the checkout -> where the wheel must hold its files
mapping = {"dispatchbench": "dispatchbench", "solvers": "dispatchbench/solvers", "problems": "dispatchbench/problems",
           "studies": "dispatchbench/studies"}
expected = set()
for folder, target in mapping.items():
    for path in (src / folder).rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            expected.add(f"{target}/{path.relative_to(src / folder).as_posix()}")
missing = sorted(expected - names)
if missing:
    sys.exit("check_wheel: FAILED: the wheel lacks " + ", ".join(missing)
             + " (pyproject.toml: add the subpackage to [tool.setuptools] packages or the pattern to package-data)")
for must in ("dispatchbench/solvers/scip.py", "dispatchbench/solvers/pyswarms_logging.yaml",
             "dispatchbench/problems/paper-4region.toml", "dispatchbench/problems/paper-4region-tableIV.csv",
             "dispatchbench/studies/paper.toml", "dispatchbench/studies/scaling.toml"):
    if must not in names:
        sys.exit(f"check_wheel: FAILED: the wheel lacks {must}")
kinds = Counter("/".join(n.split("/")[:2]) if n.count("/") >= 2 else n.split("/")[0] for n in names)
print(f"wheel {Path(wheel).name}: {len(names)} files; " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
EOF

# 3. a fresh venv with the wheel and its [all] extra
stage "installing into a fresh venv"
"$PY" -m venv "$WORK/venv"
# --no-compile: byte-compiling torch's thousands of modules is most of an install's CPU time
"$WORK/venv/bin/python" -m pip install -q --no-compile "${WHEEL}[all]"
DB="$WORK/venv/bin/dispatchbench"

# 4. as a user would, from an empty folder outside the checkout, with no plugin folder set
stage "checking the installed package from $WORK/empty"
cd "$WORK/empty"
unset DISPATCHBENCH_SOLVER_PATH PYTHONPATH
"$DB" --version
"$WORK/venv/bin/python" - "$WORK/venv" <<'EOF'
import sys
from pathlib import Path
import dispatchbench
where = Path(dispatchbench.__file__).resolve()
if Path(sys.argv[1]).resolve() not in where.parents:
    sys.exit(f"check_wheel: FAILED: dispatchbench imported from {where}, not from the venv")
EOF
"$DB" solvers --json > solvers.json
"$WORK/venv/bin/python" - <<'EOF'
import json, sys
doc = json.load(open("solvers.json"))
names = {s["name"] for s in doc["solvers"]}
want = {"scip", "nlopt", "pso", "merit_order", "lagrangian", "admm", "flip_search", "madrl_tvc", "maddpg"}
if not want <= names or doc["broken"]:
    sys.exit(f"check_wheel: FAILED: solvers {sorted(names)} (want {sorted(want)}); broken: {doc['broken']}")
print("solvers:", ", ".join(sorted(names)), "(" + ", ".join(sorted({s["source"] for s in doc["solvers"]})) + ")")
EOF
"$DB" solve -p problems/paper-4region.toml -s paper-4region-tableIV.csv --solver scip --json > solve.json
"$WORK/venv/bin/python" - <<'EOF'
import json, sys
row = json.loads(open("solve.json").read().splitlines()[0])
if row["status"] != "optimal" or row["cost"] is None or f"{row['cost']:.4f}" != "4903.9687":
    sys.exit(f"check_wheel: FAILED: solve gave {row['status']} cost {row['cost']} (want optimal 4903.9687)")
print(f"solve (CLI): {row['state']} {row['status']} cost {row['cost']:.4f}")

import dispatchbench
frame = dispatchbench.solve("paper-4region.toml", "paper-4region-tableIV.csv", solver="scip")
cost = frame.loc[0, "cost"]
if f"{cost:.4f}" != "4903.9687":
    sys.exit(f"check_wheel: FAILED: dispatchbench.solve gave cost {cost}")
print(f"solve (Python API): cost {cost:.4f}")
EOF
if [ -n "$(ls -A "$WORK/empty" | grep -v -x -e solvers.json -e solve.json)" ]; then
  die "commands left files in the working folder: $(ls -A "$WORK/empty")"
fi

# 5. the README's example study, as a user copies it, from an empty folder
if [ "${SKIP_STUDY:-0}" != 1 ]; then
  stage "running the README's example study from $WORK/study"
  mkdir -p "$WORK/study" && cd "$WORK/study"
  "$PY" - "$ROOT/README.md" <<'EOF'
import re, sys
found = re.search(r"```toml\n(# my-study\.toml\n.*?)```", open(sys.argv[1], encoding="utf-8").read(), re.S)
if not found:
    sys.exit("check_wheel: FAILED: README.md has no example study (a toml block starting '# my-study.toml')")
open("my-study.toml", "w", encoding="utf-8").write(found.group(1))
EOF
  if [ "${STUDY_QUICK:-0}" = 1 ]; then QUICK=(--quick); NAME=my-study-quick; SIZES="2,3"; else QUICK=(); NAME=my-study; SIZES="4,8"; fi
  "$DB" reproduce my-study.toml "${QUICK[@]}" --cache "$WORK/models" --no-progress > study.out 2> study.err \
    || { tail -5 study.err >&2; die "reproduce my-study.toml ${QUICK[*]} failed"; }
  "$WORK/venv/bin/python" - "$NAME" "$SIZES" <<'EOF'
import csv, sys
name, want = sys.argv[1], set(sys.argv[2].split(","))
rows = list(csv.DictReader(open(f"reports/{name}/summary.csv")))
sizes = {r["regions"] for r in rows}
exact = [float(r["mean gap %"]) for r in rows if r["method"].startswith("SCIP")]
if sizes != want or not exact or max(abs(g) for g in exact) > 1e-9 or len(rows) < 3:
    sys.exit(f"check_wheel: FAILED: the example study's summary: sizes {sorted(sizes)}, {len(rows)} lines")
print(f"example study: {len(rows)} lines (methods x sizes), report reports/{name}/report.html")
EOF
fi
stage "wheel check passed"
