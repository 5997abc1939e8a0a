"""The report's figures: one function per figure, one idea per figure.

Every function takes plain tables that :mod:`dispatchbench.report.html_report` has already recomputed with
the evaluator, draws them, writes a small PNG and returns its path. Nothing here computes a
cost or reads a results directory, so a figure can never show a number the evaluator did not
produce, and each figure can be tested or restyled on its own.

Conventions: x is the time of day in hours (interval ``t`` of 15 minutes starts at ``t/4`` h);
powers are in kW, energies per interval in kWh (kW x 0.25 h), costs in the problem's cost unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # headless: reports are built on servers and in CI
# Titles and legends carry user text (method labels, region and group names); with mathtext on, a
# "$" in one of them is parsed as TeX and can fail the whole figure.
matplotlib.rcParams["text.parse_math"] = False

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DPI = 100
HOURS_PER_INTERVAL = 0.25
TYPE_COLORS = {"FDC": "#1f77b4", "ASC": "#2ca02c", "V2G": "#9467bd", "import": "#ff7f0e", "export": "#d62728"}
V2G_COLORS = {"fed back (F)": "#9467bd", "losses (L)": "#d62728", "unused availability": "#c7c7c7"}


def _palette(name: str = "tab10") -> list[tuple[float, float, float]]:
    """The colours of a matplotlib qualitative map (``tab10``, or ``tab20`` for more), as RGB tuples."""
    cmap = plt.get_cmap(name)
    return [(float(r), float(g), float(b)) for r, g, b, _ in (cmap(i) for i in range(cmap.N))]


def _edges(n_intervals: int) -> np.ndarray:
    """Interval edges (n + 1 values): a step drawn ``where="post"`` then covers the last interval too."""
    return np.arange(n_intervals + 1) * HOURS_PER_INTERVAL


def _held(values) -> np.ndarray:
    """Values per interval with the last one repeated, to pair with :func:`_edges`."""
    values = np.asarray(values, dtype=float)
    return np.append(values, values[-1:]) if len(values) else values


def plain_log_ticks(ax: plt.Axes, *, x: bool = False, y: bool = True) -> None:
    """Tick labels of a log or symlog axis as plain numbers (``0.001``, ``10``, ``-1``).

    With mathtext off (above) matplotlib's default log labels print their raw TeX,
    ``$\\mathdefault{10^{0}}$``; minor ticks keep their marks but lose their labels."""
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    for axis, wanted in ((ax.xaxis, x), (ax.yaxis, y)):
        if wanted:
            axis.set_major_formatter(plain)
            axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


LINE_STYLES = ("-", (0, (5, 2)), (0, (1, 1.5)), (0, (6, 2, 1, 2)))


def line_style(rank: int, count: int) -> dict[str, Any]:
    """How the ``rank``-th of ``count`` method lines is drawn, so that lines which coincide stay
    visible: the first drawn is the widest and each later one narrower and dashed differently,
    so a line laid exactly over another leaves the one below showing at its edges and gaps
    (a method equal to the optimum all day is the common case, not the exception)."""
    width = 1.2 + 2.2 * (count - 1 - rank) / max(count - 1, 1)
    return {"lw": width, "ls": LINE_STYLES[rank % len(LINE_STYLES)], "alpha": 0.9, "zorder": 2 + rank}


def _finish(fig: plt.Figure, path: Path, *, layout: bool = True) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout:
        fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _day_axis(ax: plt.Axes) -> None:
    ax.set_xlim(0, 24)
    ax.set_xticks(range(0, 25, 3))
    ax.grid(True, alpha=0.3)


def _panels(n: int, *, width: float = 10.0, height: float = 2.6, ncols: int = 1, sharex: bool = True):
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height * nrows + 0.4), sharex=sharex, squeeze=False)
    flat = axes.ravel()
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


# ---- Fig. 5: training curves ------------------------------------------------------------------


def training_reward(curves: Mapping[str, list[pd.DataFrame]], path: Path) -> Path:
    """Fig. 5a: mean reward at the fixed probe states against training steps, per learned method.

    ``curves[method]`` holds one frame per seed with columns ``step`` and ``reward``; the line is
    the median over seeds, the band spans the seeds' minimum to maximum.
    """
    return _training_panels(
        curves,
        "reward",
        "reward at the probe states\n(mean over 10 states)",
        path,
        "Fig. 5a - training reward at 10 fixed probe states",
        log=False,
    )


def training_loss(curves: Mapping[str, list[pd.DataFrame]], path: Path) -> Path:
    """Fig. 5b: total Q-network / critic loss per step against training steps, per learned method."""
    return _training_panels(
        curves,
        "loss",
        "total training loss\n(Q-network / critic, log scale)",
        path,
        "Fig. 5b - training loss",
        log=True,
    )


def _training_panels(
    curves: Mapping[str, list[pd.DataFrame]], column: str, ylabel: str, path: Path, title: str, *, log: bool
) -> Path:
    fig, axes = _panels(max(len(curves), 1), width=10.0, height=2.8, sharex=False)  # methods train for different steps
    for ax, (method, runs) in zip(axes, sorted(curves.items())):
        grid, stacked = _align(runs, column)
        if stacked.size:
            med = np.nanmedian(stacked, axis=0)
            ax.plot(
                grid,
                med,
                color="#1f77b4",
                lw=1.6,
                marker="o" if len(grid) <= 30 else None,
                ms=3,
                label=f"median over {len(runs)} seed(s)",
            )
            if len(runs) > 1:
                ax.fill_between(
                    grid,
                    np.nanmin(stacked, axis=0),
                    np.nanmax(stacked, axis=0),
                    color="#1f77b4",
                    alpha=0.25,
                    lw=0,
                    label="min-max over seeds",
                )
        else:
            ax.text(
                0.5, 0.5, f"no {column} logged in this training run", ha="center", va="center", transform=ax.transAxes
            )
        if log and stacked.size and np.nanmin(stacked) > 0:
            ax.set_yscale("log")
            plain_log_ticks(ax)
        ax.set_title(method, fontsize=10, loc="left")
        ax.set_ylabel(ylabel, fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.set_xlabel("training step", fontsize=9)
        if stacked.size:
            ax.legend(fontsize=8, loc="best")
    if not curves:
        axes[0].text(
            0.5,
            0.5,
            "no training logs in this results directory",
            ha="center",
            va="center",
            transform=axes[0].transAxes,
        )
    fig.suptitle(title, fontsize=11)
    return _finish(fig, path)


def _align(runs: list[pd.DataFrame], column: str) -> tuple[np.ndarray, np.ndarray]:
    """Put the seeds' curves on one step grid (interpolated) so a median and band make sense."""
    runs = [r.dropna(subset=[column]).sort_values("step") for r in runs if column in r and len(r)]
    runs = [r for r in runs if len(r)]
    if not runs:
        return np.array([]), np.empty((0, 0))
    if len(runs) == 1:
        return runs[0]["step"].to_numpy(float), runs[0][column].to_numpy(float)[None, :]
    stop = min(float(r["step"].max()) for r in runs)
    start = max(float(r["step"].min()) for r in runs)
    n = max(min(200, max(len(r) for r in runs)), 2)
    grid = np.linspace(start, stop, n) if stop > start else np.array([start])
    stacked = np.vstack([np.interp(grid, r["step"].to_numpy(float), r[column].to_numpy(float)) for r in runs])
    return grid, stacked


# ---- Fig. 6: V2G ------------------------------------------------------------------------------


def v2g_energy(energy: Mapping[str, pd.DataFrame], path: Path, method: str) -> Path:
    """Fig. 6a: per V2G group, how the available V2G energy was used in each interval.

    ``energy[group]`` has columns ``fed back (F)``, ``losses (L)``, ``unused availability`` in
    kWh per interval; stacked, they add up to the energy available from plugged-in batteries.
    """
    fig, axes = _panels(len(energy), height=2.5)
    for ax, (group, frame) in zip(axes, energy.items()):
        x = _edges(len(frame))
        cols = list(V2G_COLORS)
        ax.stackplot(
            x,
            *(_held(frame[c]) for c in cols),
            labels=cols,
            colors=[V2G_COLORS[c] for c in cols],
            step="post",
            alpha=0.9,
        )
        ax.set_title(group, fontsize=10, loc="left")
        ax.set_ylabel("energy per interval (kWh)", fontsize=9)
        _day_axis(ax)
    axes[-1].set_xlabel("time of day (h)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncols=len(labels), fontsize=8, frameon=False)
    fig.suptitle(f"Fig. 6a - V2G energy allocation per group over the day ({method})", fontsize=11)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return _finish(fig, path, layout=False)


def v2g_feedback_ratio(ratio: pd.DataFrame, path: Path, method: str) -> Path:
    """Fig. 6b: feedback ratio ``x / v`` per V2G group (eq. 6), NaN where nothing was available."""
    fig, ax = plt.subplots(figsize=(10, 3.2))
    x = _edges(len(ratio))
    for group in ratio.columns:
        ax.step(x, _held(ratio[group]) * 100, where="post", lw=1.5, label=group)
    ax.set_ylim(-3, 103)
    ax.set_ylabel("feedback ratio x/v (%)")
    ax.set_xlabel("time of day (h)")
    ax.legend(fontsize=8, loc="best")
    _day_axis(ax)
    ax.set_title(f"Fig. 6b - V2G feedback ratio per group ({method})", fontsize=11)
    return _finish(fig, path)


# ---- Fig. 7 and 8: how demand was served ------------------------------------------------------


def regional_service(service: Mapping[str, pd.DataFrame], path: Path, method: str) -> Path:
    """Fig. 7: per region, local supply by charger type plus imports, against the region's demand.

    ``service[region]`` has columns ``demand``, ``FDC``, ``ASC``, ``V2G`` (delivered, F) and
    ``import`` (kW; negative = export). Local supply and imports stack up to the demand; an
    export shows as an area below zero (the local stack then exceeds the demand by as much).
    """
    fig, axes = _panels(len(service), ncols=2, width=12.0, height=3.0)
    for ax, (region, frame) in zip(axes, service.items()):
        x = _edges(len(frame))
        imp = _held(frame["import"])
        layers = {t: _held(frame[t]) for t in ("FDC", "ASC", "V2G")}
        layers["import"] = np.maximum(imp, 0.0)
        ax.stackplot(
            x,
            *layers.values(),
            labels=[f"{k} (local)" if k != "import" else "import from grid" for k in layers],
            colors=[TYPE_COLORS[k] for k in layers],
            step="post",
            alpha=0.85,
        )
        ax.fill_between(
            x, np.minimum(imp, 0.0), 0.0, step="post", color=TYPE_COLORS["export"], alpha=0.7, label="export to grid"
        )
        ax.step(x, _held(frame["demand"]), where="post", color="black", lw=1.4, label="demand")
        ax.axhline(0, color="black", lw=0.5)
        ax.set_title(f"region {region}", fontsize=10, loc="left")
        ax.set_ylabel("power (kW)", fontsize=9)
        _day_axis(ax)
    for ax in axes[-2:]:
        ax.set_xlabel("time of day (h)")
        ax.tick_params(labelbottom=True)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncols=len(labels), fontsize=8, frameon=False)
    fig.suptitle(f"Fig. 7 - how each region's demand was served ({method})", fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _finish(fig, path, layout=False)


def regional_supply(supply: pd.DataFrame, demand: np.ndarray, path: Path, method: str) -> Path:
    """Fig. 8: local supply of each region (kW, stacked) over the day against the total demand.

    The grid only moves power between regions, so the stack must meet the total demand line.
    """
    fig, ax = plt.subplots(figsize=(10, 3.8))
    x = _edges(len(supply))
    colors = _palette()
    ax.stackplot(
        x,
        *(_held(supply[c]) for c in supply.columns),
        labels=[f"region {c}" for c in supply],
        colors=colors[: len(supply.columns)],
        step="post",
        alpha=0.85,
    )
    ax.step(x, _held(demand), where="post", color="black", lw=1.6, ls="--", label="total demand")
    ax.set_ylabel("power (kW)")
    ax.set_xlabel("time of day (h)")
    ax.legend(fontsize=8, loc="upper left", ncols=len(supply.columns) + 1)
    _day_axis(ax)
    ax.set_title(f"Fig. 8 - total supply by region vs total demand ({method})", fontsize=11)
    return _finish(fig, path)


# ---- Fig. 9: cost over the day ----------------------------------------------------------------


def _legend_below(ax: plt.Axes) -> None:
    """Method legends go under the plot: method lines often overlap, and labels are long."""
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2, frameon=False)


def method_colors(methods: list[str]) -> dict[str, tuple]:
    """One fixed colour per method, shared by every figure that shows several methods."""
    # tab10 repeats after ten methods (a scaling figure has about fifteen): then tab20's twenty
    palette = _palette() if len(set(methods)) <= 10 else _palette("tab20")
    return {m: palette[i % len(palette)] for i, m in enumerate(sorted(methods))}


def cost_per_interval(costs: pd.DataFrame, path: Path, colors: Mapping[str, tuple]) -> Path:
    """Fig. 9a: operating cost of each interval over the day, one line per method (median over seeds)."""
    fig, ax = plt.subplots(figsize=(10, 3.6 + 0.2 * len(costs.columns)))
    x = _edges(len(costs))
    for rank, method in enumerate(costs.columns):
        style = line_style(rank, len(costs.columns))
        ax.step(x, _held(costs[method]), where="post", color=colors.get(method), label=method, **style)
    ax.set_ylabel("operating cost per interval\n(cost units)")
    ax.set_xlabel("time of day (h)")
    _legend_below(ax)
    _day_axis(ax)
    ax.set_title("Fig. 9a - operating cost per 15-min interval over the day", fontsize=11)
    return _finish(fig, path)


def gap_to_optimum(gaps: pd.DataFrame, path: Path, colors: Mapping[str, tuple], reference: str) -> Path:
    """Fig. 9b: each method's gap to the certified optimum in every interval, in percent.

    A symmetric-log axis keeps gaps of 1e-4 % and of 10 % readable on one figure; a gap below 0
    can only be within the feasibility tolerance (or a reference that is not optimal).
    """
    fig, _ = gap_axes(gaps, colors, reference)
    return _finish(fig, path)


def gap_axes(gaps: pd.DataFrame, colors: Mapping[str, tuple], reference: str) -> tuple[plt.Figure, plt.Axes]:
    """Fig. 9b drawn, not yet written (its tick labels can be checked)."""
    fig, ax = plt.subplots(figsize=(10, 3.6 + 0.2 * len(gaps.columns)))
    x = _edges(len(gaps))
    for rank, method in enumerate(gaps.columns):
        style = line_style(rank, len(gaps.columns))
        ax.step(x, _held(gaps[method]), where="post", color=colors.get(method), label=method, **style)
    ax.set_yscale("symlog", linthresh=1e-3)
    plain_log_ticks(ax)
    values = gaps.to_numpy(float)
    finite = values[np.isfinite(values)]
    lo = float(finite.min()) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 0.0
    ax.set_ylim(min(-1e-3, 2 * lo), max(1.0, 2 * hi))  # at least -0.001 % .. 1 %: ticks stay at decades
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel(f"gap to {reference} (%)\n(symmetric log scale)")
    ax.set_xlabel("time of day (h)")
    if len(gaps.columns):
        _legend_below(ax)
    _day_axis(ax)
    ax.set_title(f"Fig. 9b - gap to the certified optimum ({reference}) per interval", fontsize=11)
    return fig, ax


def scaling_panel(summary: pd.DataFrame, column: str, ylabel: str, path: Path) -> Path:
    """One line per method of ``column`` against the number of groups, both axes logarithmic
    (sizes double; gaps and times span orders of magnitude). Zero gaps sit on the floor."""
    fig, ax = plt.subplots(figsize=(8, 4.2))
    methods = list(dict.fromkeys(summary["method"]))
    colors = method_colors(methods)
    floor = 1e-6
    markers = "osD^vP*X"
    for rank, method in enumerate(methods):
        part = summary[summary["method"] == method].sort_values("groups")
        values = pd.to_numeric(part[column], errors="coerce").clip(lower=floor)
        style = line_style(rank, len(methods))
        ax.plot(
            part["groups"],
            values,
            marker=markers[rank % len(markers)],
            ms=4 + 6 * (len(methods) - 1 - rank) / max(len(methods) - 1, 1),  # a wider marker under a narrower
            label=method,
            color=colors[method],
            **style,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    # plain tick labels: with mathtext off (above) matplotlib's default log labels print raw TeX
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    ax.set_xticks(sorted(set(summary["groups"])))
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("charger groups (agents)")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    _legend_below(ax)
    return _finish(fig, path)


def gap_against_time(points: pd.DataFrame, path: Path, title: str, floor: float = 1e-6) -> Path:
    """Mean gap (%) against online decision time (s), both logarithmic, for one instance size: a
    curve per classical method over its matched budgets (``budget_base`` names the method), a
    point per learner and per unbudgeted method. Zero gaps sit on the floor; methods without a
    gap (nothing answered) are left out of the plot and stay in the tables."""
    fig, ax = plt.subplots(figsize=(8, 4.6))
    budgeted = points[points["budget_base"].notna()] if "budget_base" in points else points.iloc[0:0]
    single = points.drop(budgeted.index)
    names = list(dict.fromkeys([*single["method"], *budgeted["budget_base"]]))
    colors = method_colors(names)
    online = "s per decision (online)"
    for base, part in budgeted.groupby("budget_base", sort=False):
        part = part.sort_values("budget_multiple")
        x = pd.to_numeric(part[online], errors="coerce")
        y = pd.to_numeric(part["mean gap %"], errors="coerce").clip(lower=floor)
        ax.plot(x, y, marker="o", color=colors[base], label=f"{base} at 1x/10x/100x budgets")
        for xi, yi, m in zip(x, y, part["budget_multiple"]):
            if pd.notna(xi) and pd.notna(yi):
                ax.annotate(f"{m:g}x", (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
    for _, row in single.iterrows():
        x, y = pd.to_numeric(row[online], errors="coerce"), pd.to_numeric(row["mean gap %"], errors="coerce")
        if pd.isna(x) or pd.isna(y):
            continue
        learned = bool(row.get("learns")) if pd.notna(row.get("learns")) else False
        ax.scatter([x], [max(y, floor)], marker="*" if learned else "s", s=120 if learned else 50,
                   color=colors[row["method"]], label=row["method"], zorder=3)  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.yaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # raw TeX otherwise (mathtext is off)
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("seconds per decision, online (median)")
    ax.set_ylabel("mean gap to the best known solution (%)")
    ax.set_title(title, fontsize=11)
    ax.grid(True, which="both", alpha=0.3)
    _legend_below(ax)
    return _finish(fig, path)
