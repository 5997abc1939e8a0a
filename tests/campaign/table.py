#!/usr/bin/env python3
"""Run the whole bad-input campaign and print its table by class (Markdown).

    python tests/campaign/table.py [--jobs 2] [--only CLASS] [--json FILE]

Columns: cases, clean, traceback, hang, silent, security, unclear (see :mod:`campaign.runner`);
every case that is not clean is listed under the table with what happened. Exit status 1 when
any case is not clean.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: campaign and hand_results

from campaign.cases import CLASSES, all_cases, build_workspace  # noqa: E402
from campaign.runner import VERDICTS, Case, Outcome, run_case  # noqa: E402


def run_safely(case: Case, ws: Path) -> Outcome:
    """A case whose setup or start fails is listed (as unclear, with the exception), not fatal."""
    try:
        return run_case(case, ws)
    except Exception as exc:  # noqa: BLE001
        return Outcome(case.cls, case.name, "unclear", None, "", 0.0, f"the campaign could not run it: {exc!r}")


def table(outcomes: list[Outcome]) -> str:
    cols = ["class", "cases", *VERDICTS]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for cls in (*CLASSES, "total"):
        mine = [o for o in outcomes if cls in ("total", o.cls)]
        count = Counter(o.verdict for o in mine)
        lines.append("| " + " | ".join([cls, str(len(mine)), *(str(count[v]) for v in VERDICTS)]) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", choices=CLASSES, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write every outcome here")
    args = parser.parse_args()
    todo = [c for c in all_cases() if args.only in (None, c.cls)]
    with tempfile.TemporaryDirectory(prefix="campaign-") as tmp:
        ws = Path(tmp)
        build_workspace(ws)
        (ws / "cases").mkdir()
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            outcomes = list(pool.map(lambda c: run_safely(c, ws), todo))
        wall = time.perf_counter() - start
    print(table(outcomes))
    print(f"\n{len(outcomes)} cases in {wall:.0f} s")
    for o in outcomes:
        if o.verdict != "clean":
            print(f"- {o.verdict}: [{o.cls}] {o.name}: {o.why} | exit {o.exit_code}: {o.first_line[:200]}")
    if args.json:
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=1) + "\n")
    return 0 if all(o.verdict == "clean" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
