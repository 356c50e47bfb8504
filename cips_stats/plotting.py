"""Figures (matplotlib, Agg backend) of results computed elsewhere; this module never computes statistics.

Every function takes a tidy table that a statistical function returned (after
disclosure control, when the figure leaves the package), draws it and returns
a ``matplotlib.figure.Figure`` (or a list of them, one per page, for the
figures that paginate long lists of countries or items).  Rows whose
``suppressed`` column is true and rows with a blank (suppressed) value are
never drawn.  Every label shown comes from the table or from the arguments
(factor, group, item and iteration labels of the instrument); nothing about a
particular survey is written into this module.

``to_png`` turns a figure into PNG bytes (for embedding in the HTML report) and
``render`` draws many figures at once, in parallel worker processes when there
are enough of them to pay for the workers.

The figures:

- ``dot_panels``: indicators with intervals as small multiples, one panel per
  key factor, countries as rows (at most ``max_rows`` per page), iterations as
  colours;
- ``change_heatmap``: change country x key factor, one panel per group, with
  significance (``p_adjusted``) or posterior (``p_improved``) marks;
- ``claim_audit``: shares of improved cells, supported vs unsupported, per
  rule, against their null intervals, and the permutation null distribution;
- ``kpi``: the probability of meeting each target, and the trend across
  iterations;
- ``instrument_review``: per item, alpha if deleted, loading, "don't know"
  rate and non-invariance marks;
- ``forest``, ``gap``, ``reliability``: one factor's cells as a single list, a
  difference between two groups, a reliability coefficient per cell.

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
>>> pages = plotting.dot_panels(t, panel_labels={"audit": "Audit and control"})
>>> [ax.get_title() for ax in pages[0].axes]
['Audit and control']
"""

from __future__ import annotations

import io
import math
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["dot_panels", "change_heatmap", "claim_audit", "kpi", "instrument_review",
           "forest", "gap", "reliability", "render", "submit", "default_jobs", "to_png"]

_COLORS = ("#1f5f8b", "#c2571a", "#3a7d44", "#7b4f9d", "#8c8c8c", "#b8860b", "#2a9d8f", "#9d2a4f")
_GREY = "#8c8c8c"
_MARK = "#b3261e"
#: Height of one table row in a figure (inches) and the fixed margins around the axes.
_ROW_IN = 0.17
_TOP_IN = 0.75
_BOTTOM_IN = 0.55


# ============================================================================================ helpers
def _figure(height: float, width: float = 7.0, *, constrained: bool = True):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A Figure on the Agg canvas, not attached to pyplot: no global state, nothing to close.
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained" if constrained else None)
    FigureCanvasAgg(fig)
    return fig


def to_png(fig: Any, *, dpi: int = 90) -> bytes:
    """Render a figure to PNG bytes.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    dpi : int
        Resolution (default 90: sharp on a screen, small in an HTML file).

    Returns
    -------
    bytes
        The PNG file.

    Examples
    --------
    >>> from cips_stats.plotting import _figure, to_png
    >>> to_png(_figure(1.0, 1.0))[1:4]
    b'PNG'
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _require(table: Any, columns: Sequence[str], what: str) -> None:
    from .errors import DataError, Problem

    if not isinstance(table, pd.DataFrame):
        raise DataError(f"{what}: expected a pandas DataFrame; got {type(table).__name__}.",
                        [Problem(rule="type", message="a tidy DataFrame is required",
                                 value=type(table).__name__)])
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(f"{what}: the table lacks the column(s) {', '.join(map(repr, missing))}; "
                        f"it has {', '.join(map(str, table.columns))}.",
                        [Problem(rule="missing_column", message=f"column {c!r} is required", column=c)
                         for c in missing])


def _visible(table: pd.DataFrame, values: Sequence[str]) -> pd.DataFrame:
    """Rows to draw: not suppressed, and every column of ``values`` finite."""
    keep = np.ones(len(table), dtype=bool)
    if "suppressed" in table.columns:
        keep &= ~table["suppressed"].fillna(False).astype(bool).to_numpy()
    for v in values:
        keep &= np.isfinite(pd.to_numeric(table[v], errors="coerce").to_numpy(dtype=float))
    return table[keep]


def _num(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)


def _label(mapping: Mapping[Any, Any] | None, value: Any) -> str:
    if mapping is not None:
        if value in mapping:
            return str(mapping[value])
        if str(value) in mapping:
            return str(mapping[str(value)])
    return str(value)


def _order(values: pd.Series | Sequence[Any]) -> list:
    """Distinct values in a natural order (numbers numerically, text alphabetically)."""
    u = list(dict.fromkeys(values))
    try:
        return sorted(u)
    except TypeError:
        return sorted(u, key=str)


def _chunks(n: int, max_rows: int) -> list[tuple[int, int]]:
    """Split ``n`` rows into the fewest pages of at most ``max_rows``, as even as possible."""
    if n <= 0:
        return [(0, 0)]
    k = math.ceil(n / max_rows)
    edges = np.linspace(0, n, k + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def _check_max(name: str, value: Any) -> int:
    from .errors import CipsError

    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise CipsError(f"{name}= must be a positive integer; got {value!r}.")
    return int(value)


def _left_margin(labels: Sequence[str], fontsize: float) -> float:
    """Inches needed left of the axes for the longest tick label."""
    longest = max((len(s) for s in labels), default=1)
    return 0.25 + 0.55 * fontsize / 72.0 * longest


def _page_title(title: str | None, a: int, b: int, n: int, noun: str) -> str | None:
    parts = [title] if title else []
    if n > b - a:
        parts.append(f"{noun} {a + 1}\u2013{b} of {n}")
    return " \u2014 ".join(parts) or None


def _limits(lo: np.ndarray, hi: np.ndarray, include: Sequence[float] = ()) -> tuple[float, float]:
    vals = np.concatenate([lo[np.isfinite(lo)], hi[np.isfinite(hi)], np.asarray(include, dtype=float)])
    if not len(vals):
        return 0.0, 1.0
    a, b = float(vals.min()), float(vals.max())
    pad = 0.04 * (b - a or 1.0)
    return a - pad, b + pad


# ======================================================================================= dot panels
def dot_panels(table: pd.DataFrame, *, panels: str = "factor", rows: str = "country", colour: str = "iteration",
               estimate: str = "estimate", low: str = "ci_low", high: str = "ci_high", max_rows: int = 40,
               max_panels: int = 6, panel_labels: Mapping[Any, str] | None = None,
               colour_labels: Mapping[Any, str] | None = None, row_labels: Mapping[Any, str] | None = None,
               colour_title: str | None = None, xlabel: str = "Indicator", title: str | None = None,
               truth: pd.DataFrame | None = None, reference: float | None = None) -> list:
    """Indicators with intervals as small multiples that fit a screen.

    One panel per value of ``panels`` (a key factor), one row per value of
    ``rows`` (a country), one colour per value of ``colour`` (an iteration);
    a dot is the estimate and a line its interval.  Panels share their rows
    and their horizontal scale.  Long lists are paginated: each returned
    figure holds at most ``max_rows`` rows and ``max_panels`` panels (180
    countries make five pages of 36 rows per six factors; the CIPS
    instrument's 11 key factors make two pages of panels, 6 and 5).  A page
    is at most about 13 inches wide: up to five panels are 2.3 inches wide,
    six or more share 11.5 inches.

    Parameters
    ----------
    table : pandas.DataFrame
        Tidy published table with the columns ``panels``, ``rows``,
        ``colour``, ``estimate``, ``ci_low``, ``ci_high`` (e.g. one group's
        rows of ``cs.estimate.indicators(...).table`` after disclosure
        control).  Rows with ``suppressed`` true or a blank estimate are not
        drawn.
    panels, rows, colour : str
        Columns giving the panel, the row and the colour of each dot.
    estimate, low, high : str
        Columns of the estimate and its interval.
    max_rows : int
        Rows per page at most (default 40).
    max_panels : int
        Panels per page at most, side by side (default 6).
    panel_labels, colour_labels, row_labels : mapping, optional
        Display labels of the panel, colour and row values (e.g. the
        instrument's factor labels, iteration years); values not in the
        mapping are shown as they are.
    colour_title : str, optional
        Title of the colour legend (default: the ``colour`` column's name).
    xlabel : str
        Axis label under the panels (the indicator's scale).
    title : str, optional
        Figure title; the page range is appended when there are several.
    truth : pandas.DataFrame, optional
        Known values of a synthetic survey: the key columns and ``value``,
        drawn as black crosses.
    reference : float, optional
        A vertical reference line (e.g. the scale's midpoint).

    Returns
    -------
    list of matplotlib.figure.Figure
        One figure per page; empty only when ``table`` has no panel at all.

    Examples
    --------
    >>> import pandas as pd
    >>> from cips_stats import plotting
    >>> t = pd.DataFrame({"country": list("AABB"), "iteration": [1, 2, 1, 2], "factor": "hrm",
    ...                   "estimate": [5.0, 5.5, 6.0, 6.2], "ci_low": [4.5, 5.0, 5.6, 5.8],
    ...                   "ci_high": [5.5, 6.0, 6.4, 6.6]})
    >>> pages = plotting.dot_panels(t, colour_labels={1: "2019", 2: "2023"})
    >>> len(pages), [t.get_text() for t in pages[0].axes[0].get_yticklabels()]
    (1, ['A', 'B'])
    """
    _require(table, [panels, rows, colour, estimate, low, high], "dot_panels")
    return list(_dot_pages(table, panels=panels, rows=rows, colour=colour, estimate=estimate, low=low, high=high,
                           max_rows=max_rows, max_panels=max_panels, panel_labels=panel_labels,
                           colour_labels=colour_labels, row_labels=row_labels, colour_title=colour_title,
                           xlabel=xlabel, title=title, truth=truth, reference=reference, reuse=False))


def _dot_pages(table: pd.DataFrame, *, panels: str, rows: str, colour: str, estimate: str, low: str, high: str,
               max_rows: int, max_panels: int, panel_labels: Mapping[Any, str] | None,
               colour_labels: Mapping[Any, str] | None, row_labels: Mapping[Any, str] | None,
               colour_title: str | None, xlabel: str, title: str | None, truth: pd.DataFrame | None,
               reference: float | None, reuse: bool) -> Iterator[Any]:
    """The pages of :func:`dot_panels`, one at a time.

    With ``reuse`` the pages of one set of panels are the same figure, its
    data, row labels and size set anew for each page: the axes, ticks,
    titles and legend are built once (about half the cost of a page).  Use
    each page before asking for the next; the PNGs are identical to those of
    fresh figures.
    """
    _require(table, [panels, rows, colour, estimate, low, high], "dot_panels")
    max_rows = _check_max("max_rows", max_rows)
    max_panels = _check_max("max_panels", max_panels)
    all_panels = list(dict.fromkeys(table[panels]))
    t = _visible(table, [estimate])
    row_values = _order(t[rows])
    colours = _order(t[colour])
    lo_all, hi_all = _num(t[low]), _num(t[high])
    include = [] if reference is None else [reference]
    xlim = _limits(np.concatenate([lo_all, _num(t[estimate])]), np.concatenate([hi_all, _num(t[estimate])]), include)
    truth_map = None
    if truth is not None and len(t):
        tk = [c for c in (panels, rows, colour, "group") if c in truth.columns and c in t.columns]
        truth_map = t[tk].merge(truth[tk + ["value"]], on=tk, how="left")["value"].to_numpy(dtype=float)
    t = t.assign(_row=t[rows].map({v: i for i, v in enumerate(row_values)}).to_numpy(),
                 _col=t[colour].map({v: i for i, v in enumerate(colours)}).to_numpy(),
                 _est=_num(t[estimate]), _lo=lo_all, _hi=hi_all)
    if truth_map is not None:
        t = t.assign(_truth=truth_map)
    style = {"colours": colours, "colour_labels": colour_labels, "xlim": xlim, "reference": reference,
             "truth": truth_map is not None, "xlabel": xlabel,
             "legend_title": colour_title if colour_title is not None else str(colour)}
    ylabels_all = [_label(row_labels, v) for v in row_values]
    for p0 in range(0, max(len(all_panels), 1), max_panels):
        pan = all_panels[p0:p0 + max_panels]
        if not pan:
            break
        page = None
        for a, b in _chunks(len(row_values), max_rows):
            if page is None or not reuse:
                page = _DotPage([_label(panel_labels, p) for p in pan], style)
            here = t[(t["_row"] >= a) & (t["_row"] < b)]
            page.show([here[here[panels] == pv] for pv in pan], a, b, ylabels_all[a:b],
                      _page_title(title, a, b, len(row_values), "rows"))
            yield page.fig


class _DotPage:
    """One page of dot panels: the figure, its axes and the (empty) artists of every panel and colour."""

    FONTSIZE = 7.0

    def __init__(self, titles: list[str], style: dict) -> None:
        colours = style["colours"]
        k = max(len(colours), 1)
        self.n_col, self.k, self.n_pan = len(colours), k, len(titles)
        self.offset = np.array([(i - (k - 1) / 2) * min(0.7 / k, 0.25) for i in range(k)])
        self.fig = fig = _figure(1.0, 1.0, constrained=False)
        # Not sharey: shared axes make every panel lay out every row's tick; the rows are set once per page.
        self.axes = axes = fig.subplots(1, len(titles), squeeze=False)[0]
        self.artists = []                            # per panel, per colour: (interval lines, dots, truth)
        for ax, ttl in zip(axes, titles):
            per = []
            for ci, cv in enumerate(colours):
                color = _COLORS[ci % len(_COLORS)]
                lines = ax.hlines([], [], [], color=color, lw=1.2)
                dots, = ax.plot([], [], "o", color=color, ms=3.5, label=_label(style["colour_labels"], cv))
                cross = None
                if style["truth"]:
                    cross, = ax.plot([], [], "x", color="black", ms=3.5, label="truth" if ci == 0 else "_nolegend_")
                per.append((lines, dots, cross))
            self.artists.append(per)
            if style["reference"] is not None:
                ax.axvline(style["reference"], color=_GREY, lw=0.8, ls="--")
            ax.set_title(ttl, fontsize=8.5)
            ax.set_xlim(*style["xlim"])
            ax.grid(axis="x", alpha=0.3)
            ax.tick_params(axis="x", labelsize=7)
        for ax in axes:
            ax.set_yticks([])
            ax.xaxis.set_major_locator(_ticks())
        self.xlabel = style["xlabel"]
        self.legend = None
        handles, labels = axes[0].get_legend_handles_labels()
        if handles and (k > 1 or style["truth"]):
            self.legend = fig.legend(handles, labels, loc="upper right", ncol=min(len(labels), 6), fontsize=7,
                                     title=style["legend_title"], title_fontsize=7, frameon=False)

    def show(self, subsets: list[pd.DataFrame], a: int, b: int, labels: list[str], title: str | None) -> None:
        """Rows ``a:b`` (their ``labels``) of each panel's table; the figure sized for them."""
        n_here = max(b - a, 1)
        left = _left_margin(labels, self.FONTSIZE)
        width = left + min(2.3, 11.5 / self.n_pan) * self.n_pan + 0.3
        height = _TOP_IN + _BOTTOM_IN + _ROW_IN * n_here * (1.0 if self.k <= 2 else 1.25)
        fig = self.fig
        fig.set_size_inches(width, height)
        fig.subplots_adjust(left=left / width, right=1 - 0.2 / width, bottom=_BOTTOM_IN / height,
                            top=1 - _TOP_IN / height, wspace=0.08)
        for sub, per in zip(subsets, self.artists):
            col = sub["_col"].to_numpy()
            for ci, (lines, dots, cross) in enumerate(per):
                m = col == ci
                y = sub["_row"].to_numpy(dtype=float)[m] - a + self.offset[ci]
                lo, hi, est = (sub[c].to_numpy(dtype=float)[m] for c in ("_lo", "_hi", "_est"))
                ok = np.isfinite(lo) & np.isfinite(hi)
                lines.set_segments([((x0, yy), (x1, yy)) for x0, x1, yy in zip(lo[ok], hi[ok], y[ok])])
                dots.set_data(est, y)
                if cross is not None:
                    cross.set_data(sub["_truth"].to_numpy(dtype=float)[m], y)
        for ax in self.axes:
            ax.set_ylim(n_here - 0.5, -0.5)
        self.axes[0].set_yticks(np.arange(b - a), labels, fontsize=self.FONTSIZE)
        fig.supxlabel(self.xlabel, fontsize=8, y=0.1 / height)
        if self.legend is not None:
            self.legend.set_bbox_to_anchor((1 - 0.1 / width, 1.0))
        if title:
            fig.suptitle(title, fontsize=9, x=0.02, ha="left", y=1 - 0.08 / height, va="top")


# ======================================================================================= heatmap
def change_heatmap(table: pd.DataFrame, *, rows: str = "country", columns: str = "factor", panels: str = "group",
                   value: str | None = None, marks: str | None = None, significance: float = 0.05,
                   probability: float = 0.95, max_rows: int = 40, column_labels: Mapping[Any, str] | None = None,
                   panel_labels: Mapping[Any, str] | None = None, row_labels: Mapping[Any, str] | None = None,
                   value_label: str = "Change", title: str | None = None, cmap: str = "RdBu") -> list:
    """Change of every cell as a heatmap, rows x key factors, one panel per group, with marks.

    The colour is the change (blue up, red down, white none; the scale is
    symmetric around 0 and shared by every panel and page).  Marks: with
    the frequentist cell changes (``cs.change.cell_changes(...).table``) a
    triangle marks a change significant after FDR control
    (``p_adjusted < significance``), pointing up or down; with the posterior
    (the change model's ``prob_improved`` table) it marks
    ``p_improved >= probability`` (up) or ``<= 1 - probability`` (down).
    Cells not in the table, suppressed or blank are grey.

    Parameters
    ----------
    table : pandas.DataFrame
        Cell changes (``country``, ``group``, ``factor``, ``estimate``,
        ``p_adjusted``, ``suppressed``...) or posterior summaries
        (``country``, ``group``, ``factor``, ``mean``, ``p_improved``...).
    rows, columns, panels : str
        Columns giving the heatmap row (country), column (key factor) and
        panel (respondent group; a table without it makes one panel).
    value : str, optional
        Column coloured (default ``"mean"`` when the table has ``p_improved``,
        else ``"estimate"``).
    marks : {"p_adjusted", "p_improved", None}, optional
        Column of the marks (default: ``"p_improved"`` when present, else
        ``"p_adjusted"`` when present, else no marks).
    significance : float
        Level for ``p_adjusted`` marks (default 0.05).
    probability : float
        Posterior probability for ``p_improved`` marks (default 0.95).
    max_rows : int
        Rows per page at most (default 40).
    column_labels, panel_labels, row_labels : mapping, optional
        Display labels (the instrument's factor and group labels).
    value_label : str
        Colour bar label.
    title : str, optional
        Figure title (the page range is appended when there are several).
    cmap : str
        A diverging matplotlib colour map.

    Returns
    -------
    list of matplotlib.figure.Figure
        One figure per page of rows.

    Examples
    --------
    >>> import pandas as pd
    >>> from cips_stats import plotting
    >>> t = pd.DataFrame({"country": ["A", "A", "B", "B"], "group": "g1", "factor": ["f1", "f2"] * 2,
    ...                   "estimate": [0.4, -0.2, 0.1, 0.0], "p_adjusted": [0.01, 0.3, 0.5, 0.9],
    ...                   "suppressed": [False, False, False, True]})
    >>> fig, = plotting.change_heatmap(t, column_labels={"f1": "Audit", "f2": "HRM"})
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['Audit', 'HRM']
    """
    from matplotlib import colormaps

    posterior = "p_improved" in getattr(table, "columns", ())
    value = value or ("mean" if posterior else "estimate")
    if marks is None:
        marks = "p_improved" if posterior else ("p_adjusted" if "p_adjusted" in getattr(table, "columns", ()) else None)
    need = [rows, columns, value] + ([marks] if marks else [])
    _require(table, need, "change_heatmap")
    max_rows = _check_max("max_rows", max_rows)
    t = _visible(table, [value])
    if panels not in table.columns:
        t = t.assign(**{panels: ""})
        pan = [""]
    else:
        pan = list(dict.fromkeys(table[panels])) or [""]
    cols = list(dict.fromkeys(table[columns]))
    row_values = _order(t[rows])
    ri = t[rows].map({v: i for i, v in enumerate(row_values)}).to_numpy(dtype=np.intp)
    ci = t[columns].map({v: i for i, v in enumerate(cols)}).to_numpy(dtype=np.intp)
    pi = t[panels].map({v: i for i, v in enumerate(pan)}).to_numpy(dtype=np.intp)
    vals = _num(t[value])
    grid = np.full((len(pan), max(len(row_values), 1), max(len(cols), 1)), np.nan)
    grid[pi, ri, ci] = vals
    up, down, mark_text = _heat_marks(None if not marks else _num(t[marks]), marks, vals, (pi, ri, ci), grid.shape,
                                      significance, probability)
    vmax = float(np.nanmax(np.abs(vals))) if np.isfinite(vals).any() else 1.0
    vmax = vmax or 1.0
    colormap = colormaps[cmap].with_extremes(bad="#d9d9d9")
    fontsize = 7.0
    ylabels_all = [_label(row_labels, v) for v in row_values]
    xlabels = [_label(column_labels, c) for c in cols]
    pages = []
    for a, b in _chunks(len(row_values), max_rows):
        n_here = max(b - a, 1)
        left = _left_margin(ylabels_all[a:b], fontsize)
        panel_w = max(0.24 * len(cols), 1.6)
        width = left + panel_w * len(pan) + 0.25 * (len(pan) - 1) + 1.1
        bottom = 0.35 + 0.055 * max((len(s) for s in xlabels), default=1)
        height = _TOP_IN + bottom + 0.2 * n_here
        fig = _figure(height, width, constrained=False)
        fig.subplots_adjust(left=left / width, right=1 - 1.0 / width, bottom=bottom / height,
                            top=1 - _TOP_IN / height, wspace=0.25 / panel_w)
        axes = fig.subplots(1, len(pan), sharey=True, squeeze=False)[0]
        im = None
        for j, (ax, pv) in enumerate(zip(axes, pan)):
            g = np.ma.masked_invalid(grid[j, a:a + n_here])   # at least one (blank) row
            im = ax.imshow(g, cmap=colormap, vmin=-vmax, vmax=vmax, aspect="auto", interpolation="nearest")
            for mask, marker in ((up[j, a:b], "^"), (down[j, a:b], "v")):
                yy, xx = np.nonzero(mask)
                if len(yy):
                    ax.scatter(xx, yy, marker=marker, s=14, c="black", linewidths=0)
            ax.set_xticks(np.arange(len(cols)))
            ax.set_xticklabels(xlabels, rotation=60, ha="right", rotation_mode="anchor", fontsize=fontsize)
            ax.set_title(_label(panel_labels, pv), fontsize=8.5)
            ax.tick_params(length=0)
        axes[0].set_yticks(np.arange(b - a))
        axes[0].set_yticklabels(ylabels_all[a:b], fontsize=fontsize)
        cax = fig.add_axes((1 - 0.85 / width, bottom / height, 0.12 / width, 1 - (_TOP_IN + bottom) / height))
        cb = fig.colorbar(im, cax=cax)
        cb.set_label(value_label, fontsize=7)
        cb.ax.tick_params(labelsize=6)
        ttl = _page_title(title, a, b, len(row_values), "rows")
        if ttl:
            fig.suptitle(ttl, fontsize=9, x=0.02, ha="left", y=1 - 0.08 / height, va="top")
        if mark_text:
            fig.text(0.02, 1 - 0.42 / height, mark_text + "; grey: not published", fontsize=6.5, va="top")
        pages.append(fig)
    return pages


def _heat_marks(m: np.ndarray | None, marks: str | None, vals: np.ndarray, idx: tuple, shape: tuple,
                significance: float, probability: float) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Cells marked up and down in the heatmap's grid (``idx``: panel, row, column of each value) and the key."""
    up = np.zeros(shape, dtype=bool)
    down = np.zeros(shape, dtype=bool)
    if m is None:
        return up, down, None
    if marks == "p_improved":
        u, d = m >= probability, m <= 1 - probability
        text = f"\u25b2/\u25bc P(improved) \u2265 {probability:g} / \u2264 {1 - probability:g}"
    else:
        sig = m < significance
        u, d = sig & (vals > 0), sig & (vals < 0)
        text = f"\u25b2/\u25bc {marks} < {significance:g}"
    up[tuple(i[u] for i in idx)] = True
    down[tuple(i[d] for i in idx)] = True
    return up, down, text


# =================================================================================== claim audit
def claim_audit(shares: pd.DataFrame, nulls: pd.DataFrame | None = None, *, permutation: Any = None,
                group: Any = None, rule_labels: Mapping[Any, str] | None = None,
                set_labels: Mapping[Any, str] | None = None, group_labels: Mapping[Any, str] | None = None,
                scenario_labels: Mapping[Any, str] | None = None, statistic_label: str = "Difference in shares",
                title: str | None = None) -> Any:
    """Claim audit: shares of improved cells, supported vs unsupported, per rule, against the null.

    Left (one panel per group): for each rule, the share of supported and of
    unsupported cells called improved, with their intervals (dot and line),
    drawn over the interval of shares expected under each null scenario
    (grey bars) — a share inside its grey bar is what chance alone gives.
    Right (when ``permutation`` is given): the permutation null
    distribution of the supported-minus-unsupported statistic, with the
    observed value.

    Parameters
    ----------
    shares : pandas.DataFrame
        ``ClaimAudit.shares``: ``group``, ``rule``, ``set`` (``supported``,
        ``unsupported``; ``difference`` rows are ignored here), ``share``,
        ``ci_low``, ``ci_high``.
    nulls : pandas.DataFrame, optional
        ``ClaimAudit.nulls``: ``group``, ``rule``, ``set``, ``scenario``,
        ``ci_low``, ``ci_high`` (the interval of simulated null shares).
    permutation : mapping or pandas.DataFrame, optional
        The permutation null distribution: a DataFrame with ``statistic``
        (one row per permutation) and optionally ``group``, plus
        ``observed`` (the observed statistic, repeated), or a mapping
        ``{"statistic": array, "observed": float}``.
    group : optional
        Draw only this group.
    rule_labels, set_labels, group_labels, scenario_labels : mapping, optional
        Display labels of rules, sets, groups and null scenarios.
    statistic_label : str
        Axis label of the permutation panel.
    title : str, optional
        Figure title (above the panels).

    Returns
    -------
    matplotlib.figure.Figure
        The audit: one panel per group (and the permutation null on the right).

    Examples
    --------
    >>> import pandas as pd
    >>> from cips_stats import plotting
    >>> sh = pd.DataFrame({"group": "g", "rule": ["point", "point"], "set": ["supported", "unsupported"],
    ...                    "share": [0.8, 0.6], "ci_low": [0.7, 0.5], "ci_high": [0.9, 0.7]})
    >>> fig = plotting.claim_audit(sh, set_labels={"supported": "With support"})
    >>> fig.axes[0].get_legend_handles_labels()[1][:2]
    ['With support', 'unsupported']
    """
    _require(shares, ["rule", "set", "share", "ci_low", "ci_high"], "claim_audit")
    sh = shares[shares["set"].isin(["supported", "unsupported"])]
    sh = _visible(sh, ["share"])
    if "group" not in sh.columns:
        sh = sh.assign(group="")
    if group is not None:
        sh = sh[sh["group"] == group]
    groups = list(dict.fromkeys(sh["group"]))
    if nulls is not None and len(nulls):
        _require(nulls, ["rule", "set", "scenario", "ci_low", "ci_high"], "claim_audit (nulls)")
        nu = nulls if "group" in nulls.columns else nulls.assign(group="")
    else:
        nu = None
    perm = _permutation(permutation, group)
    rules = list(dict.fromkeys(sh["rule"]))
    n_rows = max(len(rules), 1)
    height = 0.9 + max(len(groups), 1) * (0.45 * n_rows + 0.55)
    width = 10.0 if perm is not None else 7.0
    fig = _figure(height, width)
    if perm is not None:
        gs = fig.add_gridspec(max(len(groups), 1), 2, width_ratios=(1.6, 1.0))
        axes = [fig.add_subplot(gs[i, 0]) for i in range(max(len(groups), 1))]
        pax = fig.add_subplot(gs[:, 1])
    else:
        axes = [fig.add_subplot(max(len(groups), 1), 1, i + 1) for i in range(max(len(groups), 1))]
        pax = None
    sets = ("supported", "unsupported")
    scen_style = {}
    for ax, g in zip(axes, groups or [None]):
        s = sh if g is None else sh[sh["group"] == g]
        if nu is not None:
            n_g = nu if g is None else nu[nu["group"] == g]
            n_g = _visible(n_g, ["ci_low", "ci_high"])
            scens = list(dict.fromkeys(n_g["scenario"]))
            for si, sc in enumerate(scens):
                scen_style.setdefault(sc, 0.18 + 0.14 * (len(scen_style) % 3))
                nn = n_g[n_g["scenario"] == sc]
                ri = nn["rule"].map({r: i for i, r in enumerate(rules)}).to_numpy(dtype=float)
                so = np.where(nn["set"].to_numpy() == "supported", -0.15, 0.15)
                ok = np.isfinite(ri)
                ax.barh(ri[ok] + so[ok], (_num(nn["ci_high"]) - _num(nn["ci_low"]))[ok], left=_num(nn["ci_low"])[ok],
                        height=0.26, color="black", alpha=scen_style[sc], lw=0,
                        label=f"null: {_label(scenario_labels, sc)}")
        for si, st in enumerate(sets):
            ss = s[s["set"] == st]
            y = ss["rule"].map({r: i for i, r in enumerate(rules)}).to_numpy(dtype=float) + (-0.15 if si == 0 else 0.15)
            color = _COLORS[si]
            lo, hi = _num(ss["ci_low"]), _num(ss["ci_high"])
            ok = np.isfinite(lo) & np.isfinite(hi)
            if ok.any():
                ax.hlines(y[ok], lo[ok], hi[ok], color=color, lw=1.6)
            ax.plot(_num(ss["share"]), y, "o", color=color, ms=5, label=_label(set_labels, st))
        ax.set_yticks(np.arange(len(rules)))
        ax.set_yticklabels([_label(rule_labels, r) for r in rules], fontsize=8)
        ax.set_ylim(n_rows - 0.5, -0.5)
        ax.set_xlim(-0.02, 1.02)
        ax.xaxis.set_major_formatter(_percent())
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(axis="x", labelsize=7)
        if g not in (None, ""):
            ax.set_title(_label(group_labels, g), fontsize=9)
    if axes:
        axes[-1].set_xlabel("Share of cells called improved", fontsize=8)
        _legend(axes[0], fontsize=7, loc="lower right", frameon=False)
    if pax is not None:
        _permutation_panel(pax, *perm, statistic_label)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _permutation(permutation: Any, group: Any) -> tuple[np.ndarray, float] | None:
    """The permutation null of :func:`claim_audit` as (statistics, observed), or None."""
    if permutation is None:
        return None
    if isinstance(permutation, pd.DataFrame):
        _require(permutation, ["statistic"], "claim_audit (permutation)")
        pt = permutation if group is None or "group" not in permutation.columns else \
            permutation[permutation["group"] == group]
        obs = float(pt["observed"].iloc[0]) if "observed" in pt.columns and len(pt) else float("nan")
        return _num(pt["statistic"]), obs
    return np.asarray(permutation["statistic"], dtype=float), float(permutation.get("observed", np.nan))


def _permutation_panel(pax: Any, stat: np.ndarray, obs: float, statistic_label: str) -> None:
    """The permutation null distribution (histogram) with the observed statistic."""
    stat = stat[np.isfinite(stat)]
    if len(stat):
        pax.hist(stat, bins=min(40, max(10, int(np.sqrt(len(stat))))), color=_GREY, alpha=0.8,
                 label="permutation null")
    if np.isfinite(obs):
        pax.axvline(obs, color=_MARK, lw=1.6, label="observed")
    pax.set_xlabel(statistic_label, fontsize=8)
    pax.set_ylabel("Permutations", fontsize=8)
    pax.tick_params(labelsize=7)
    _legend(pax, fontsize=7, frameon=False)
    pax.set_title("Permutation null distribution", fontsize=9)


def _legend(ax: Any, **kwargs: Any) -> None:
    """A legend only when something labelled was drawn (matplotlib warns on an empty one)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        uniq = dict(zip(labels, handles))
        ax.legend(list(uniq.values()), list(uniq.keys()), **kwargs)


def _ticks():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(nbins=5)


def _percent():
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(1.0, decimals=0)


# ============================================================================================ KPI
def kpi(probabilities: pd.DataFrame, trend: pd.DataFrame | None = None, *, rows: str = "factor",
        colour: str = "group", probability: str = "probability", iteration: str = "iteration",
        estimate: str = "estimate", low: str = "ci_low", high: str = "ci_high", target: str = "target",
        row_labels: Mapping[Any, str] | None = None, colour_labels: Mapping[Any, str] | None = None,
        iteration_labels: Mapping[Any, str] | None = None, ncol: int = 5, ylabel: str = "Indicator",
        title: str | None = None) -> Any:
    """KPI view: probability that each indicator meets its target, and its trend across iterations.

    Left: one row per key factor, one dot per group at the probability of
    meeting the target (0-100%), with lines at 50% and 95%.  Right (when
    ``trend`` is given): small multiples, one per key factor, the estimate of
    each group across iterations with its interval band and the target as
    a dashed line.

    Parameters
    ----------
    probabilities : pandas.DataFrame
        One row per (factor, group): ``factor``, ``group``, ``probability``
        (of meeting the target, computed from the replicates or the
        posterior).  Suppressed rows are not drawn.
    trend : pandas.DataFrame, optional
        ``factor``, ``group``, ``iteration``, ``estimate``, ``ci_low``,
        ``ci_high`` and optionally ``target``.
    rows, colour, probability, iteration, estimate, low, high, target : str
        Column names.
    row_labels, colour_labels, iteration_labels : mapping, optional
        Display labels (factor, group, iteration).
    ncol : int
        Trend panels per row.
    ylabel : str
        Axis label of the trend panels.
    title : str, optional
        Figure title (above both parts).

    Returns
    -------
    matplotlib.figure.Figure
        The probabilities of meeting the targets (and the trends on the right).

    Examples
    --------
    >>> import pandas as pd
    >>> from cips_stats import plotting
    >>> p = pd.DataFrame({"factor": ["f1", "f2"], "group": "g", "probability": [0.9, 0.3]})
    >>> fig = plotting.kpi(p, row_labels={"f1": "Audit"})
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['Audit', 'f2']
    """
    _require(probabilities, [rows, colour, probability], "kpi")
    ncol = _check_max("ncol", ncol)
    pr = _visible(probabilities, [probability])
    factors = list(dict.fromkeys(probabilities[rows]))
    groups = list(dict.fromkeys(probabilities[colour]))
    tr = None
    if trend is not None:
        _require(trend, [rows, colour, iteration, estimate], "kpi (trend)")
        tr = _visible(trend, [estimate])
    nrow_t = math.ceil(len(factors) / ncol) if tr is not None and factors else 0
    height = max(2.2, 0.8 + 0.28 * len(factors), 0.6 + 1.7 * nrow_t)
    width = 4.2 + (2.0 * min(ncol, len(factors)) if tr is not None else 0)
    fig = _figure(height, width)
    if tr is not None:
        gs = fig.add_gridspec(max(nrow_t, 1), 1 + min(ncol, len(factors)),
                              width_ratios=(2.0,) + (1.0,) * min(ncol, len(factors)))
        ax = fig.add_subplot(gs[:, 0])
    else:
        ax = fig.add_subplot(111)
    k = max(len(groups), 1)
    for gi, g in enumerate(groups):
        s = pr[pr[colour] == g]
        y = s[rows].map({f: i for i, f in enumerate(factors)}).to_numpy(dtype=float) + (gi - (k - 1) / 2) * 0.25
        ax.plot(_num(s[probability]), y, "o", color=_COLORS[gi % len(_COLORS)], ms=5,
                label=_label(colour_labels, g))
    for ref in (0.5, 0.95):
        ax.axvline(ref, color=_GREY, lw=0.8, ls="--")
    ax.set_xlim(-0.02, 1.02)
    ax.xaxis.set_major_formatter(_percent())
    ax.set_yticks(np.arange(len(factors)))
    ax.set_yticklabels([_label(row_labels, f) for f in factors], fontsize=7.5)
    ax.set_ylim(len(factors) - 0.5, -0.5)
    ax.set_xlabel("Probability of meeting the target", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    if k > 1:
        _legend(ax, fontsize=7, frameon=False, loc="lower right")
    if tr is not None:
        its = _order(tr[iteration])
        ipos = {v: i for i, v in enumerate(its)}
        for fi, f in enumerate(factors):
            tax = fig.add_subplot(gs[fi // ncol, 1 + fi % ncol])
            sf = tr[tr[rows] == f]
            for gi, g in enumerate(groups):
                s = sf[sf[colour] == g].sort_values(iteration)
                x = s[iteration].map(ipos).to_numpy(dtype=float)
                color = _COLORS[gi % len(_COLORS)]
                if low in s.columns and high in s.columns:
                    lo, hi = _num(s[low]), _num(s[high])
                    ok = np.isfinite(lo) & np.isfinite(hi)
                    if ok.sum() > 1:
                        tax.fill_between(x[ok], lo[ok], hi[ok], color=color, alpha=0.18, lw=0)
                    elif ok.any():
                        tax.vlines(x[ok], lo[ok], hi[ok], color=color, lw=1.2)
                tax.plot(x, _num(s[estimate]), "-o", color=color, ms=3, lw=1.2)
                if target in s.columns:
                    tv = _num(s[target])
                    tv = tv[np.isfinite(tv)]
                    if len(tv):
                        tax.axhline(float(tv[0]), color=color, lw=0.9, ls="--")
            tax.set_xticks(np.arange(len(its)))
            tax.set_xticklabels([_label(iteration_labels, i) for i in its], fontsize=6.5)
            tax.set_title(_label(row_labels, f), fontsize=7.5)
            tax.tick_params(axis="y", labelsize=6.5)
            if fi % ncol == 0:
                tax.set_ylabel(ylabel, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# ============================================================================== instrument review
def instrument_review(items: pd.DataFrame, *, item: str = "item", factor: str = "factor",
                      alpha_if_deleted: str = "alpha_if_deleted", factor_alpha: str | None = "alpha",
                      loading: str = "loading", dont_know: str = "dont_know_rate",
                      noninvariant: str | None = "noninvariant", item_labels: Mapping[Any, str] | None = None,
                      factor_labels: Mapping[Any, str] | None = None, loading_cut: float | None = None,
                      max_rows: int = 40, title: str | None = None) -> list:
    """Instrument review for guideline revision: one row per item, four aligned panels.

    Panels: alpha if the item is deleted (a red dot when deleting it would
    raise its factor's alpha; the factor's alpha as a grey tick), the
    standardised loading (with an optional cut-off line), the "don't know"
    rate, and a mark where the item's parameters were freed in partial
    invariance.  Items are grouped by factor; long instruments are
    paginated (``max_rows`` items per page).

    Parameters
    ----------
    items : pandas.DataFrame
        One row per item: ``item``, ``factor``, ``alpha_if_deleted``,
        ``alpha`` (the factor's alpha, optional), ``loading``,
        ``dont_know_rate`` (0-1), ``noninvariant`` (bool, optional).
        Blank values are left empty.
    item, factor, alpha_if_deleted, factor_alpha, loading, dont_know, noninvariant : str
        Column names (``factor_alpha``/``noninvariant`` may be None or absent).
    item_labels, factor_labels : mapping, optional
        Display labels (the instrument's item texts or short names).
    loading_cut : float, optional
        A reference line on the loadings panel (e.g. 0.4).
    max_rows : int
        Items per page at most (default 40).
    title : str, optional
        Figure title; the item range is appended when there are several pages.

    Returns
    -------
    list of matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> from cips_stats import plotting
    >>> t = pd.DataFrame({"item": ["q1", "q2", "q3"], "factor": "f", "alpha_if_deleted": [.7, .75, .82],
    ...                   "alpha": .8, "loading": [.8, .7, .3], "dont_know_rate": [.02, .05, .2],
    ...                   "noninvariant": [False, False, True]})
    >>> fig, = plotting.instrument_review(t, item_labels={"q3": "Gifts are refused"})
    >>> [a.get_title() for a in fig.axes]
    ['Alpha if deleted', 'Loading', "Don't know", 'Non-invariant']
    """
    _require(items, [item, factor, alpha_if_deleted, loading, dont_know], "instrument_review")
    max_rows = _check_max("max_rows", max_rows)
    t = items
    if "suppressed" in t.columns:
        t = t[~t["suppressed"].fillna(False).astype(bool)]
    factors = list(dict.fromkeys(t[factor]))
    t = t.assign(_f=t[factor].map({f: i for i, f in enumerate(factors)})).sort_values("_f", kind="stable")
    labels_all = [f"{_label(item_labels, i)}" for i in t[item]]
    fontsize = 7.0
    has_ni = noninvariant is not None and noninvariant in t.columns
    pages = []
    for a, b in _chunks(len(t), max_rows):
        s = t.iloc[a:b]
        n_here = max(b - a, 1)
        y = np.arange(b - a, dtype=float)
        left = _left_margin(labels_all[a:b], fontsize)
        width = left + 2.0 * 3 + (0.6 if has_ni else 0) + 0.5
        height = _TOP_IN + _BOTTOM_IN + _ROW_IN * n_here
        fig = _figure(height, width, constrained=False)
        fig.subplots_adjust(left=left / width, right=1 - 0.2 / width, bottom=_BOTTOM_IN / height,
                            top=1 - _TOP_IN / height, wspace=0.1)
        ratios = (1.0, 1.0, 1.0) + ((0.28,) if has_ni else ())
        # not sharey: shared axes lay out every row's tick in every panel; the rows are set once below
        axes = fig.subplots(1, len(ratios), gridspec_kw={"width_ratios": ratios})
        aid = _num(s[alpha_if_deleted])
        al = _num(s[factor_alpha]) if factor_alpha is not None and factor_alpha in s.columns else \
            np.full(len(s), np.nan)
        worse = np.isfinite(al) & (aid > al)
        ax = axes[0]
        ok = np.isfinite(al)
        if ok.any():
            ax.plot(al[ok], y[ok], "|", color=_GREY, ms=8, label="factor alpha")
        plain = ~worse & np.isfinite(aid)
        ax.plot(aid[plain], y[plain], "o", color=_COLORS[0], ms=3.5, label="alpha if deleted")
        if worse.any():
            ax.plot(aid[worse], y[worse], "o", color=_MARK, ms=4, label="deleting raises alpha")
        ax.set_title("Alpha if deleted", fontsize=8.5)
        _legend(ax, fontsize=6, frameon=False, loc="lower left")
        ld = _num(s[loading])
        axes[1].barh(y, np.where(np.isfinite(ld), ld, 0.0), color=_COLORS[0], height=0.6)
        if loading_cut is not None:
            axes[1].axvline(loading_cut, color=_GREY, lw=0.8, ls="--")
        axes[1].set_title("Loading", fontsize=8.5)
        dk = _num(s[dont_know])
        axes[2].barh(y, np.where(np.isfinite(dk), dk, 0.0), color=_COLORS[1], height=0.6)
        axes[2].xaxis.set_major_formatter(_percent())
        axes[2].set_title("Don't know", fontsize=8.5)
        if has_ni:
            ni = s[noninvariant].fillna(False).astype(bool).to_numpy()
            axes[3].plot(np.zeros(int(ni.sum())), y[ni], "D", color=_MARK, ms=4)
            axes[3].set_xlim(-1, 1)
            axes[3].set_xticks([])
            axes[3].set_title("Non-invariant", fontsize=8.5)
        for ax in axes:
            ax.tick_params(axis="x", labelsize=6.5)
            ax.grid(axis="x", alpha=0.3)
        # factor separators and names
        fv = s["_f"].to_numpy()
        for cut in np.flatnonzero(np.diff(fv)) + 0.5:
            for ax in axes:
                ax.axhline(cut, color="#c9d3dc", lw=0.8)
        for ax in axes:
            ax.set_ylim(n_here - 0.5, -0.5)
            ax.set_yticks([])
        axes[0].set_yticks(y, labels_all[a:b], fontsize=fontsize)
        starts = np.r_[0, np.flatnonzero(np.diff(fv)) + 1] if len(fv) else np.array([], dtype=int)
        for st in starts:
            axes[-1].annotate(_label(factor_labels, factors[int(fv[st])]), xy=(1.02, st), xycoords=("axes fraction", "data"),
                              fontsize=6.5, color="#4b5966", va="center", annotation_clip=False)
        ttl = _page_title(title, a, b, len(t), "items")
        if ttl:
            fig.suptitle(ttl, fontsize=9, x=0.02, ha="left", y=1 - 0.08 / height, va="top")
        pages.append(fig)
    return pages


# ========================================================================== the original figures
def _labels(table: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    cols = [k for k in keys if k in table.columns]
    return [" · ".join(str(v) for v in row) for row in table[cols].itertuples(index=False, name=None)]


def forest(table: pd.DataFrame, *, factor: str, group_column: str = "group",
           keys: Sequence[str] = ("country", "iteration"), estimate: str = "estimate",
           low: str = "ci_low", high: str = "ci_high", truth: pd.DataFrame | None = None,
           xlabel: str = "Indicator (0-10)") -> Any:
    """Dot-and-interval (forest) plot of one factor's cell indicators, one colour per respondent group.

    For many countries prefer :func:`dot_panels`, which paginates.

    Parameters
    ----------
    table : pandas.DataFrame
        Tidy indicator table (``factor``, the ``keys``, ``group``, ``estimate``,
        ``ci_low``, ``ci_high``); suppressed rows and rows with a blank
        estimate are left out.
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
        One factor's cells as a single list.

    Examples
    --------
    >>> import pandas as pd
    >>> from cips_stats import plotting
    >>> t = pd.DataFrame({"country": ["A", "B"], "iteration": 1, "group": "g", "factor": "f",
    ...                   "estimate": [5.0, 6.0], "ci_low": [4.5, 5.5], "ci_high": [5.5, 6.5]})
    >>> [x.get_text() for x in plotting.forest(t, factor="f").axes[0].get_yticklabels()]
    ['A · 1', 'B · 1']
    """
    t = _visible(table[table["factor"] == factor], [estimate])
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


def gap(table: pd.DataFrame, *, rows: str = "country", colour: str = "iteration", estimate: str = "estimate",
        low: str = "ci_low", high: str = "ci_high", max_rows: int = 40, max_panels: int = 6,
        panel_labels: Mapping[Any, str] | None = None, colour_labels: Mapping[Any, str] | None = None,
        row_labels: Mapping[Any, str] | None = None, xlabel: str = "Difference between the groups",
        title: str | None = None) -> list:
    """Small multiples of a gap between two groups, sized to a screen: :func:`dot_panels` with a line at 0.

    One panel per factor (one horizontal scale for all, so gaps compare
    across factors), one row per country, one colour per iteration; long
    lists of countries are paginated (at most ``max_rows`` rows a page).

    Parameters
    ----------
    table : pandas.DataFrame
        Gap table (``factor``, ``rows``, ``colour``, ``estimate``,
        ``ci_low``, ``ci_high``), e.g. ``cs.estimate.perception_gap(...).table``
        after disclosure control; suppressed rows and blank estimates are not
        drawn.  Without a ``colour`` column every dot has one colour.
    rows, colour : str
        Columns giving the row (country) and the colour (iteration) of a dot.
    estimate, low, high : str
        Columns of the gap and its interval.
    max_rows, max_panels : int
        Rows and panels per page at most.
    panel_labels, colour_labels, row_labels : mapping, optional
        Display labels (factor labels, iteration years, country names).
    xlabel : str
        Axis label: name the two groups (``"officials minus private sector"``).
    title : str, optional
        Figure title; the page range is appended when there are several.

    Returns
    -------
    list of matplotlib.figure.Figure
        One figure per page.

    Examples
    --------
    >>> import pandas as pd
    >>> from cips_stats import plotting
    >>> t = pd.DataFrame({"country": ["A", "B"], "iteration": 1, "factor": ["f1", "f2"],
    ...                   "estimate": [0.5, -0.2], "ci_low": [0.1, -0.6], "ci_high": [0.9, 0.2]})
    >>> pages = plotting.gap(t, xlabel="g1 minus g2")
    >>> len(pages), [ax.get_title() for ax in pages[0].axes]
    (1, ['f1', 'f2'])
    """
    _require(table, ["factor", rows, estimate, low, high], "gap")
    t = table if colour in table.columns else table.assign(**{colour: ""})
    return dot_panels(t, panels="factor", rows=rows, colour=colour, estimate=estimate, low=low, high=high,
                      max_rows=max_rows, max_panels=max_panels, panel_labels=panel_labels,
                      colour_labels=colour_labels, row_labels=row_labels, colour_title="Iteration",
                      xlabel=xlabel, title=title, reference=0.0)


def reliability(table: pd.DataFrame, *, value: str = "alpha", group_column: str = "group",
                cutoffs: Sequence[float] = (0.6, 0.7)) -> Any:
    """Strip plot of a reliability coefficient per factor (one dot per cell), with the usual cut-offs.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`cips_stats.reliability.by_cell` (after disclosure control).
    value : str
        Column to draw (``"alpha"`` or ``"omega"``).
    group_column : str
        Column whose values get one colour each.
    cutoffs : sequence of float
        Vertical reference lines (questionable .60, acceptable .70).

    Returns
    -------
    matplotlib.figure.Figure
        One row per factor, one dot per cell.

    Examples
    --------
    >>> import pandas as pd
    >>> from cips_stats import plotting
    >>> t = pd.DataFrame({"group": ["g1", "g2"], "factor": "f", "alpha": [0.8, 0.65]})
    >>> [x.get_text() for x in plotting.reliability(t).axes[0].get_yticklabels()]
    ['f']
    """
    t = _visible(table, [value])
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
        _legend(ax, fontsize=7)
    return fig


# ========================================================================================= render
_FIGURES: dict[str, Callable[..., Any]] = {}


def _figures() -> dict[str, Callable[..., Any]]:
    if not _FIGURES:
        _FIGURES.update({f.__name__: f for f in (dot_panels, change_heatmap, claim_audit, kpi, instrument_review,
                                                  forest, gap, reliability)})
    return _FIGURES


def _render_one(name: str, args: tuple, kwargs: dict, dpi: int) -> list[bytes]:
    if name in ("dot_panels", "gap"):      # pages drawn one by one on a figure reused for the same panels
        return [to_png(f, dpi=dpi) for f in _reused_pages(name, args, kwargs)]
    out = _figures()[name](*args, **kwargs)
    figs = out if isinstance(out, list) else [out]
    return [to_png(f, dpi=dpi) for f in figs]


def _reused_pages(name: str, args: tuple, kwargs: dict) -> Iterator[Any]:
    """The pages of ``dot_panels(*args, **kwargs)`` or ``gap(...)`` from :func:`_dot_pages` with ``reuse``."""
    import inspect

    bound = inspect.signature(_figures()[name]).bind(*args, **kwargs)
    bound.apply_defaults()
    a = dict(bound.arguments)
    if name == "gap":
        table, colour = a.pop("table"), a["colour"]
        _require(table, ["factor", a["rows"], a["estimate"], a["low"], a["high"]], "gap")
        a["table"] = table if colour in table.columns else table.assign(**{colour: ""})
        a.update(panels="factor", colour_title="Iteration", truth=None, reference=0.0)
    return _dot_pages(reuse=True, **a)


def render(jobs: Sequence[tuple], *, n_jobs: int | None = None, dpi: int = 90, min_parallel: int = 8) -> list:
    """Draw many figures to PNG, in parallel worker processes when there are enough of them.

    Parameters
    ----------
    jobs : sequence of tuple
        ``(name, args, kwargs)`` per figure call: ``name`` one of this
        module's figure functions (``"dot_panels"``, ``"change_heatmap"``...),
        ``args`` its positional arguments (the tables) and ``kwargs`` its
        keyword arguments.
    n_jobs : int, optional
        Worker processes (joblib's loky backend); default: the number of CPU
        cores.  1 draws in this process.
    dpi : int
        PNG resolution.
    min_parallel : int
        Fewer jobs than this are drawn in this process: starting workers
        (about a second each, importing matplotlib and pandas) only pays off
        for many figures, e.g. the pages of a 180-country report.

    Returns
    -------
    list of list of bytes
        Per job, the PNG of each figure it drew (one per page).

    Notes
    -----
    Matplotlib holds the GIL while it lays out and rasterises, so threads
    do not draw in parallel (measured: 2 threads took 1.1x the serial time
    for the 20 indicator pages of 180 countries); processes do, but each worker first imports
    matplotlib and pandas and receives the tables.  Measured on a loaded
    2-core machine: the 25 pages of a 180-country report (two groups'
    indicators and the change heatmap) took 1.04-1.19x less wall time with 2
    processes; the 5 pages at 25 countries took longer (0.5-0.9x), hence
    ``min_parallel``.  The PNGs are byte-identical to serial drawing.

    Examples
    --------
    >>> import pandas as pd
    >>> from cips_stats import plotting
    >>> p = pd.DataFrame({"factor": ["f1"], "group": "g", "probability": [0.9]})
    >>> pngs = plotting.render([("kpi", (p,), {})], n_jobs=1)
    >>> len(pngs), pngs[0][0][:4]
    (1, b'\\x89PNG')
    """
    from .errors import CipsError

    figs = _figures()
    bad = [j[0] if isinstance(j, tuple) and j else j for j in jobs
           if not (isinstance(j, tuple) and len(j) == 3 and j[0] in figs)]
    if bad:
        raise CipsError(f"render(): each job must be (name, args, kwargs) with name one of {', '.join(figs)}; "
                        f"got {bad[:3]!r}.")
    if n_jobs is not None:
        n_jobs = _check_max("n_jobs", n_jobs)
    if n_jobs == 1 or len(jobs) < min_parallel:
        return [_render_one(n, tuple(a), dict(k), dpi) for n, a, k in jobs]
    from joblib import Parallel, delayed

    workers = n_jobs or _cpu_count()
    return Parallel(n_jobs=workers, backend="loky")(delayed(_render_one)(n, tuple(a), dict(k), dpi)
                                                    for n, a, k in jobs)


def submit(name: str, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None, *, dpi: int = 90,
           n_jobs: int | None = None) -> Any:
    """Start drawing one figure to PNG in a worker process; return its future at once.

    The report submits each figure as soon as its section is ready and
    collects the PNGs when it writes the HTML, so figures are drawn while
    the report goes on with the other sections, the tables and the JSON.
    The workers are joblib's reusable loky processes (the same pool as
    ``joblib.Parallel(backend="loky")``), started once and reused.

    Parameters
    ----------
    name : str
        One of this module's figure functions (``"dot_panels"``, ``"gap"``...).
    args, kwargs
        Its positional arguments (the published tables) and keyword arguments.
    dpi : int
        PNG resolution.
    n_jobs : int, optional
        Worker processes (default :func:`default_jobs`: the cores, or 1 on
        fewer than 4); 1 draws now, in this process, and returns a finished
        future.

    Returns
    -------
    concurrent.futures.Future
        Its ``result()`` is the list of PNG bytes, one per page; a figure
        that failed raises its exception there.

    Examples
    --------
    >>> import pandas as pd
    >>> from cips_stats import plotting
    >>> p = pd.DataFrame({"factor": ["f1"], "group": "g", "probability": [0.9]})
    >>> plotting.submit("kpi", (p,), n_jobs=1).result()[0][:4]
    b'\\x89PNG'
    """
    from .errors import CipsError

    if name not in _figures():
        raise CipsError(f"submit(): name must be one of {', '.join(_figures())}; got {name!r}.")
    return _submit(_render_one, (name, tuple(args), dict(kwargs or {}), dpi), n_jobs)


def _render_caught(name: str, args: tuple, kwargs: dict, dpi: int) -> tuple[list[bytes], list[tuple]]:
    """:func:`_render_one` and the warnings it raised, as (category, message), to be shown by the caller."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pngs = _render_one(name, args, kwargs, dpi)
    return pngs, [(w.category, str(w.message)) for w in caught]


def _submit(func: Callable[..., Any], args: tuple, n_jobs: int | None) -> Any:
    """``func(*args)`` in a worker process (``n_jobs`` workers, default the cores), or here, now, with 1."""
    from concurrent.futures import Future

    workers = default_jobs() if n_jobs is None else _check_max("n_jobs", n_jobs)
    if workers > 1:
        return _executor(workers).submit(func, *args)
    fut: Future = Future()
    try:
        fut.set_result(func(*args))
    except Exception as exc:
        fut.set_exception(exc)
    return fut


def _executor(workers: int) -> Any:
    """joblib's reusable loky pool of ``workers`` processes, each limited to its share of the BLAS threads.

    Always asked for with the same arguments, so the pool started once (e.g. by
    :func:`cips_stats.pipeline.analyze`) is reused by every figure and model fit
    instead of being restarted (loky restarts a pool asked for differently).
    """
    from joblib.executor import get_memmapping_executor

    threads = str(max(1, _cpu_count() // workers))
    env = {k: threads for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    return get_memmapping_executor(workers, timeout=300, env=env)


def default_jobs() -> int:
    """Worker processes used when ``n_jobs`` is not given: the CPU cores, or 1 on fewer than 4.

    Measured with ``benchmarks/bench_demo.py`` on 2 cores: the workers' start-up and
    the copies of the survey they receive cost about what they save (the 25-country
    demo 38.0 s with 2 workers, 38.5 s in one process on a nearly quiet machine; 139 s
    and 117 s under a load of 8) and add ~550 MiB, so two cores work in one process.

    Returns
    -------
    int
        The number of worker processes (1 means: work in this process).

    Examples
    --------
    >>> from cips_stats import plotting
    >>> plotting.default_jobs() in (1, plotting._cpu_count())
    True
    """
    n = _cpu_count()
    return n if n >= 4 else 1


def _cpu_count() -> int:
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
