"""Generated problem files: N regions built from the paper's charger groups, perturbed.

The paper has one instance of four regions; a benchmark that must tell methods apart (and
show where learning pays) needs instances of any size that still look like the paper's. So a
generated region is one of four *kinds* modelled on the paper's regions A–D, its groups are
copies of the paper's groups of the right type (Tables I–III) with perturbed costs and sizes,
and its CS limit is drawn from 120–260 kW around the paper's 200 kW. Everything is drawn from
one ``numpy.random.Generator`` seeded by the seed and written with fixed decimals, so the same
arguments give a byte-identical file on every machine (``docs/generator.md``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dispatchbench.contract.limits import SEED_MAX
from dispatchbench.model.errors import InputError
from dispatchbench.model.problem import Problem
from dispatchbench.model.problem_file import load_problem, parse_problem

GENERATOR_VERSION = 2  # bump when the same arguments would give a different file
# v2 (issue 20): states keep a margin inside every upper limit, so the repair moves a few states
# (docs/generator.md). What is drawn did not change: the random streams stay those of v1, so a
# version bump that changes only how draws are repaired leaves every other state as it was.
DRAW_STREAM = 1
MIN_REGIONS, MAX_REGIONS = 1, 512
CS_RANGE = (120.0, 260.0)  # kW, drawn in 10 kW steps; the paper's own choice is 200 kW
COST_SPREAD = 0.15  # a, b, c, g, h scaled by U(1 - spread, 1 + spread)
SIZE_SPREAD = 0.20  # p_max (and FDC p_min with it) scaled by U(1 - spread, 1 + spread)

# The paper's groups (docs/model.md, Tables I-III): the templates every generated group copies.
FDC_TEMPLATES = (  # a, b, c, p_min, p_max
    (0.0020, 10.0, 500.0, 100.0, 600.0),
    (0.0025, 8.0, 300.0, 50.0, 400.0),
    (0.0050, 6.0, 100.0, 50.0, 300.0),
    (0.0060, 5.0, 90.0, 50.0, 200.0),
)
ASC_TEMPLATES = (  # a, b, c, p_max, h_max (min_ratio 0.5 for all three)
    (0.005, 6.0, 100.0, 200.0, 100.0),
    (0.006, 5.0, 90.0, 200.0, 90.0),
    (0.007, 3.0, 150.0, 180.0, 80.0),
)
V2G_TEMPLATES = (  # g, h, efficiency, p_max
    (5.0, 15.0, 0.9, 90.0),
    (4.0, 20.0, 0.9, 90.0),
)


@dataclass(frozen=True)
class RegionKind:
    """A kind of region: which groups it always has and which one it may add (with prob. 1/2)."""

    name: str
    paper_region: str  # the paper's region it is modelled on
    always: tuple[str, ...]
    maybe: str
    description: str


# Cycled over the regions and then shuffled, so any N >= 4 has each kind N/4 (+-1) times and
# 4 regions are one of each, like the paper. 2 + 1/2 groups per region on average (128 -> ~320).
REGION_KINDS = (
    RegionKind("mixed", "A", ("FDC", "V2G"), "ASC", "workplace/campus: fast, slow and V2G chargers"),
    RegionKind("residential", "B", ("ASC", "V2G"), "V2G", "homes: slow charging, V2G-heavy at night"),
    RegionKind("public", "C", ("FDC", "ASC"), "ASC", "public street and car-park charging"),
    RegionKind("hub", "D", ("FDC", "FDC"), "FDC", "fast-charging hub: DC chargers only"),
)
KIND_BY_NAME = {k.name: k for k in REGION_KINDS}


def _scale(rng: np.random.Generator, spread: float) -> float:
    return float(rng.uniform(1.0 - spread, 1.0 + spread))


def _group_fields(rng: np.random.Generator, gtype: str) -> list[tuple[str, str]]:
    """(key, formatted value) of one perturbed copy of a random paper group of type ``gtype``."""
    if gtype == "FDC":
        a, b, c, p_min, p_max = FDC_TEMPLATES[rng.integers(len(FDC_TEMPLATES))]
        size = _scale(rng, SIZE_SPREAD)
        return [
            ("a", f"{a * _scale(rng, COST_SPREAD):.6f}"),
            ("b", f"{b * _scale(rng, COST_SPREAD):.3f}"),
            ("c", f"{c * _scale(rng, COST_SPREAD):.2f}"),
            ("p_min", f"{p_min * size:.1f}"),
            ("p_max", f"{p_max * size:.1f}"),
        ]
    if gtype == "ASC":
        a, b, c, p_max, h_max = ASC_TEMPLATES[rng.integers(len(ASC_TEMPLATES))]
        return [
            ("a", f"{a * _scale(rng, COST_SPREAD):.6f}"),
            ("b", f"{b * _scale(rng, COST_SPREAD):.3f}"),
            ("c", f"{c * _scale(rng, COST_SPREAD):.2f}"),
            ("p_max", f"{p_max * _scale(rng, SIZE_SPREAD):.1f}"),
            ("min_ratio", "0.5"),
            ("h_max", f"{h_max:.1f}"),
        ]
    g, h, efficiency, p_max = V2G_TEMPLATES[rng.integers(len(V2G_TEMPLATES))]
    return [
        ("g", f"{g * _scale(rng, COST_SPREAD):.3f}"),
        ("h", f"{h * _scale(rng, COST_SPREAD):.2f}"),
        ("efficiency", f"{efficiency:.2f}"),
        ("p_max", f"{p_max * _scale(rng, SIZE_SPREAD):.1f}"),
    ]


def region_names(regions: int) -> list[str]:
    """``R01``..``R99`` (zero-padded to the width of N), so files sort and read in order."""
    width = max(2, len(str(regions)))
    return [f"R{i + 1:0{width}d}" for i in range(regions)]


def problem_name(regions: int, seed: int, commitment: bool) -> str:
    return f"gen-{regions}r-s{seed}" + ("" if commitment else "-convex")


def check_arguments(regions: int, seed: int) -> None:
    """Raise ``ValueError`` (one line with the fix) for arguments no file can be made from."""
    if not MIN_REGIONS <= regions <= MAX_REGIONS:
        raise ValueError(f"--regions {regions}: out of range — fix: give {MIN_REGIONS} to {MAX_REGIONS} regions")
    if seed < 0:
        raise ValueError(f"--seed {seed}: negative — fix: give a seed >= 0")
    if seed > SEED_MAX:
        raise ValueError(f"--seed {seed}: above the largest seed {SEED_MAX} — fix: give a seed in 0..{SEED_MAX}")


def generate_problem_toml(regions: int, seed: int, commitment: bool = True) -> str:
    """The problem file's text. Same arguments, same bytes (fixed decimals, one seeded Generator)."""
    check_arguments(regions, seed)
    rng = np.random.default_rng([DRAW_STREAM, seed, regions])
    names = region_names(regions)
    kinds = [REGION_KINDS[i % len(REGION_KINDS)] for i in range(regions)]
    kinds = [kinds[i] for i in rng.permutation(regions)]
    lines = [
        f"# Generated by: dispatchbench generate problem --regions {regions} --seed {seed} "
        f"--{'' if commitment else 'no-'}commitment (generator v{GENERATOR_VERSION}).",
        "# Regions of four kinds modelled on the paper's A-D, groups copied from its Tables I-III with",
        "# perturbed costs and sizes; see docs/generator.md.",
        "[problem]",
        f'name = "{problem_name(regions, seed, commitment)}"',
        f"commitment = {'true' if commitment else 'false'}",
    ]
    region_groups: list[list[str]] = []
    cs_steps = int((CS_RANGE[1] - CS_RANGE[0]) // 10)
    for name, kind in zip(names, kinds):
        cs = CS_RANGE[0] + 10.0 * int(rng.integers(cs_steps + 1))
        lines += [
            "",
            "[[regions]]",
            f"# kind: {kind.name} (like the paper's region {kind.paper_region})",
            f'name = "{name}"',
            f"cs_max = {cs:.1f}",
        ]
        types = list(kind.always) + ([kind.maybe] if rng.random() < 0.5 else [])
        region_groups.append(types)
    counter = 0
    for name, types in zip(names, region_groups):
        for gtype in types:
            counter += 1
            lines += ["", "[[groups]]", f'name = "{gtype}{counter}"', f'type = "{gtype}"', f'region = "{name}"']
            lines += [f"{key} = {value}" for key, value in _group_fields(rng, gtype)]
    return "\n".join(lines) + "\n"


def generate_problem(regions: int, seed: int, commitment: bool = True) -> Problem:
    """The generated problem, parsed and validated by the project's own loader."""
    text = generate_problem_toml(regions, seed, commitment)
    return parse_problem(tomllib.loads(text), source=problem_name(regions, seed, commitment))


def kind_of(problem: Problem, region: str) -> RegionKind:
    """The kind a region's groups make it, for any problem (the paper's A-D map to their kinds).

    State families shape each region's day by its kind; reading it from the groups rather than
    from the file's comments makes the families work on hand-written problems too.
    """
    types = {g.type.value for g in problem.groups_in(region)}
    if "V2G" in types:
        return KIND_BY_NAME["mixed" if "FDC" in types else "residential"]
    return KIND_BY_NAME["public" if "ASC" in types else "hub"]


def write_problem(path: Path, regions: int, seed: int, commitment: bool = True) -> Problem:
    """Write the file, then load it back with ``load_problem``: a file we cannot read is never left."""
    text = generate_problem_toml(regions, seed, commitment)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:  # a full disk, a read-only folder: one line, never a half-written file left
        path.unlink(missing_ok=True)
        raise InputError(
            path, "--out", f"cannot be written ({exc.strerror or exc})", "check the folder's permissions and free space"
        ) from None
    try:
        return load_problem(path)
    except Exception:
        path.unlink(missing_ok=True)
        raise
