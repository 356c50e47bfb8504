"""Tests of cips_stats.plotting: figures draw exactly the published values they are given."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cips_stats import plotting


@pytest.fixture
def cells():
    rng = np.random.default_rng(4)
    rows = []
    for c in ("A", "B", "C"):
        for it in (1, 2):
            for g in ("officials", "private"):
                for f in ("audit", "hrm"):
                    e = float(rng.uniform(4, 8))
                    rows.append({"country": c, "iteration": it, "group": g, "factor": f, "estimate": e,
                                 "ci_low": e - 0.4, "ci_high": e + 0.5})
    t = pd.DataFrame(rows)
    # a suppressed cell: blank statistics
    t.loc[(t["country"] == "B") & (t["iteration"] == 2) & (t["group"] == "private"), ["estimate", "ci_low",
                                                                                      "ci_high"]] = np.nan
    return t


def _points(ax):
    """x values of the marker-only lines (the dots) per label."""
    out = {}
    for line in ax.get_lines():
        if line.get_linestyle() in ("None", "") and line.get_marker() not in (None, "None"):
            out.setdefault(line.get_label(), []).extend(np.asarray(line.get_xdata(), dtype=float).tolist())
    return out


def test_forest_draws_each_published_estimate_once(cells):
    fig = plotting.forest(cells, factor="audit")
    ax = fig.axes[0]
    pts = _points(ax)
    sub = cells[cells["factor"] == "audit"]
    for g in ("officials", "private"):
        want = sorted(sub.loc[(sub["group"] == g) & sub["estimate"].notna(), "estimate"])
        assert sorted(pts[g]) == pytest.approx(want)
    assert len(pts["private"]) == 5                       # the suppressed cell is not drawn
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["A · 1", "A · 2", "B · 1", "B · 2", "C · 1", "C · 2"]
    assert ax.get_title() == "audit"
    # interval ends: the horizontal segments span ci_low..ci_high
    segs = np.concatenate([np.asarray(c.get_segments()) for c in ax.collections])
    lows = sorted(segs[:, 0, 0])
    assert lows == pytest.approx(sorted(sub["ci_low"].dropna()))


def test_forest_draws_truth_crosses(cells):
    truth = cells[["country", "iteration", "group", "factor"]].assign(value=5.0)
    ax = plotting.forest(cells, factor="hrm", truth=truth).axes[0]
    crosses = [ln for ln in ax.get_lines() if ln.get_marker() == "x"]
    xs = np.concatenate([ln.get_xdata() for ln in crosses])
    assert len(xs) == cells.loc[cells["factor"] == "hrm", "estimate"].notna().sum()
    assert np.all(xs == 5.0)


def test_gap_has_one_panel_per_factor_and_skips_blank_cells(cells):
    t = cells[cells["group"] == "officials"].drop(columns="group")
    t.loc[t.index[0], ["estimate", "ci_low", "ci_high"]] = np.nan
    fig = plotting.gap(t)
    assert [ax.get_title() for ax in fig.axes] == ["audit", "hrm"]
    n_dots = sum(len(ln.get_xdata()) for ax in fig.axes for ln in ax.get_lines() if ln.get_marker() == "o")
    assert n_dots == t["estimate"].notna().sum()


def test_reliability_strip_plot_and_png(cells):
    t = cells.rename(columns={"estimate": "alpha"}).assign(alpha=lambda d: d["alpha"] / 10)
    fig = plotting.reliability(t, value="alpha")
    ax = fig.axes[0]
    pts = _points(ax)
    assert sum(len(v) for v in pts.values()) == t["alpha"].notna().sum()
    assert [t_.get_text() for t_ in ax.get_yticklabels()] == ["audit", "hrm"]
    png = plotting.to_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
