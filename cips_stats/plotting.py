"""Figures (matplotlib, Agg backend) of results computed elsewhere; this module never computes statistics.

Every function takes a tidy table that a statistical function returned (after
disclosure control, when the figure leaves the package), draws it and returns
a :class:`matplotlib.figure.Figure`.  Blank (suppressed) values are simply not
drawn.  :func:`to_png` turns a figure into PNG bytes (for embedding in the
HTML report).

Examples
--------
>>> import pandas as pd
>>> from cips_stats import plotting
>>> t = pd.DataFrame({"country": ["A", "A", "B"], "iteration": [1, 2, 1], "group": "officials",
...                   "factor": "audit", "estimate": [6.0, 6.5, float("nan")],
...                   "ci_low": [5.5, 6.1, float("nan")], "ci_high": [6.4, 6.9, float("nan")]})
>>> fig = plotting.forest(t, factor="audit")
>>> plotting.to_png(fig)[:4]
b'\\x89PNG'
"""

from __future__ import annotations

import io
from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = ["forest", "gap", "reliability", "to_png"]

_COLORS = ("#1f5f8b", "#c2571a", "#3a7d44", "#7b4f9d", "#8c8c8c")


def _figure(height: float, width: float = 7.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A Figure on the Agg canvas, not attached to pyplot: no global state, nothing to close.
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def to_png(fig: Any, *, dpi: int = 90) -> bytes:
    """Render a figure to PNG bytes.

    Examples
    --------
    >>> from cips_stats.plotting import _figure, to_png
    >>> to_png(_figure(1.0, 1.0))[1:4]
    b'PNG'
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _labels(table: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    cols = [k for k in keys if k in table.columns]
    return [" · ".join(str(v) for v in row) for row in table[cols].itertuples(index=False, name=None)]


def forest(table: pd.DataFrame, *, factor: str, group_column: str = "group",
           keys: Sequence[str] = ("country", "iteration"), estimate: str = "estimate",
           low: str = "ci_low", high: str = "ci_high", truth: pd.DataFrame | None = None,
           xlabel: str = "Indicator (0-10)") -> Any:
    """Dot-and-interval (forest) plot of one factor's cell indicators, one colour per respondent group.

    Parameters
    ----------
    table : pandas.DataFrame
        Tidy indicator table (``factor``, the ``keys``, ``group``, ``estimate``,
        ``ci_low``, ``ci_high``); rows with a blank estimate are left out.
    factor : str
        The factor to draw.
    group_column : str
        Column whose values get one colour each (default ``"group"``).
    keys : sequence of str
        Columns naming a row (default country and iteration).
    truth : pandas.DataFrame, optional
        Same keys plus ``value``: the true values (synthetic data), drawn as crosses.
    xlabel : str
        Axis label.

    Returns
    -------
    matplotlib.figure.Figure
    """
    t = table[table["factor"] == factor]
    t = t[np.isfinite(pd.to_numeric(t[estimate], errors="coerce").to_numpy(dtype=float))]
    groups = list(dict.fromkeys(t[group_column])) if group_column in t.columns and len(t) else [None]
    rows = t.drop_duplicates([k for k in keys if k in t.columns]).sort_values(list(k for k in keys if k in t.columns))
    labels = _labels(rows, keys)
    pos = {lab: i for i, lab in enumerate(labels)}
    fig = _figure(max(1.6, 0.22 * len(labels) + 0.9))
    ax = fig.add_subplot(111)
    width = 0.6 / max(len(groups), 1)
    for gi, g in enumerate(groups):
        sub = t if g is None else t[t[group_column] == g]
        y = np.array([pos[lab] for lab in _labels(sub, keys)], dtype=float) + (gi - (len(groups) - 1) / 2) * width
        est = sub[estimate].to_numpy(dtype=float)
        lo = sub[low].to_numpy(dtype=float)
        hi = sub[high].to_numpy(dtype=float)
        color = _COLORS[gi % len(_COLORS)]
        ok = np.isfinite(lo) & np.isfinite(hi)
        ax.hlines(y[ok], lo[ok], hi[ok], color=color, lw=1.4)
        ax.plot(est, y, "o", color=color, ms=4, label=str(g) if g is not None else None)
        if truth is not None and len(sub):
            tk = [k for k in (*keys, group_column, "factor") if k in truth.columns and k in sub.columns]
            m = sub[tk].merge(truth[tk + ["value"]], on=tk, how="left")
            ax.plot(m["value"].to_numpy(dtype=float), y, "x", color="black", ms=4,
                    label="truth" if gi == 0 else None)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(str(factor), fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    if len(labels) and (len(groups) > 1 or truth is not None):
        ax.legend(fontsize=7, loc="best")
    return fig


def gap(table: pd.DataFrame, *, keys: Sequence[str] = ("country", "iteration"), estimate: str = "estimate",
        low: str = "ci_low", high: str = "ci_high", xlabel: str = "Officials minus private sector") -> Any:
    """Small multiples of the perception gap: one panel per factor (common scale), a dot and interval per cell.

    Parameters
    ----------
    table : pandas.DataFrame
        Gap table (``factor``, keys, ``estimate``, ``ci_low``, ``ci_high``);
        blank estimates are not drawn.

    Returns
    -------
    matplotlib.figure.Figure
    """
    t = table[np.isfinite(pd.to_numeric(table[estimate], errors="coerce").to_numpy(dtype=float))]
    factors = list(dict.fromkeys(table["factor"]))
    ncol = 5
    nrow = max(1, int(np.ceil(len(factors) / ncol)))
    rows = t.drop_duplicates([k for k in keys if k in t.columns])
    nlab = max(1, len(rows))
    fig = _figure(max(2.0, nrow * (0.14 * nlab + 1.0)), width=11.0)
    lo_all = np.concatenate([t[low].to_numpy(dtype=float), [0.0]])
    hi_all = np.concatenate([t[high].to_numpy(dtype=float), [0.0]])
    lim = (np.nanmin(lo_all), np.nanmax(hi_all))
    pad = 0.05 * (lim[1] - lim[0] or 1.0)
    for i, f in enumerate(factors):
        ax = fig.add_subplot(nrow, ncol, i + 1)
        sub = t[t["factor"] == f].sort_values([k for k in keys if k in t.columns])
        y = np.arange(len(sub))
        ax.hlines(y, sub[low].to_numpy(dtype=float), sub[high].to_numpy(dtype=float), color=_COLORS[0], lw=1)
        ax.plot(sub[estimate].to_numpy(dtype=float), y, "o", color=_COLORS[0], ms=3)
        ax.axvline(0.0, color="grey", lw=0.8)
        ax.set_xlim(lim[0] - pad, lim[1] + pad)   # one scale for every panel: gaps compare across factors
        ax.set_yticks(y)
        ax.set_yticklabels(_labels(sub, keys) if i % ncol == 0 else [], fontsize=6)
        ax.invert_yaxis()
        ax.set_title(str(f), fontsize=8)
        ax.tick_params(axis="x", labelsize=6)
    fig.supxlabel(xlabel, fontsize=8)
    return fig


def reliability(table: pd.DataFrame, *, value: str = "alpha", group_column: str = "group",
                cutoffs: Sequence[float] = (0.6, 0.7)) -> Any:
    """Strip plot of a reliability coefficient per factor (one dot per cell), with the usual cut-offs.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`cips_stats.reliability.by_cell` (after disclosure control).
    value : str
        Column to draw (``"alpha"`` or ``"omega"``).
    cutoffs : sequence of float
        Vertical reference lines (questionable .60, acceptable .70).

    Returns
    -------
    matplotlib.figure.Figure
    """
    t = table[np.isfinite(pd.to_numeric(table[value], errors="coerce").to_numpy(dtype=float))]
    factors = list(dict.fromkeys(table["factor"]))
    groups = list(dict.fromkeys(t[group_column])) if group_column in t.columns and len(t) else [None]
    fig = _figure(max(1.6, 0.3 * len(factors) + 0.8))
    ax = fig.add_subplot(111)
    rng = np.random.default_rng(0)  # jitter only; fixed for identical figures
    for gi, g in enumerate(groups):
        sub = t if g is None else t[t[group_column] == g]
        y = np.array([factors.index(f) for f in sub["factor"]], dtype=float)
        y = y + (gi - (len(groups) - 1) / 2) * 0.3 + rng.uniform(-0.08, 0.08, size=len(y))
        ax.plot(sub[value].to_numpy(dtype=float), y, "o", ms=3, alpha=0.6, color=_COLORS[gi % len(_COLORS)],
                label=None if g is None else str(g))
    for c in cutoffs:
        ax.axvline(c, color="grey", lw=0.8, ls="--")
    ax.set_yticks(range(len(factors)))
    ax.set_yticklabels(factors, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(value)
    if len(groups) > 1:
        ax.legend(fontsize=7)
    return fig
