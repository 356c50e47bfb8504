"""The ordinal respondent-level change model (``cs.change.fit_ordinal``).

Every valid answer of a respondent of cell ``k`` (country ``c``, iteration
``t``, group ``g``) to item ``j`` of key factor ``f`` follows a cumulative
logit on the cell's latent mean::

    P(y <= m) = logistic(tau[g, j, m] - a[j] * eta[k, f])        m = 1 .. K-1
    eta[k, f] = base[g, f, c]                       at the first iteration
              = base[g, f, c] + change[c, g, f]     at the last iteration
    change    = drift[g] + beta[f] + gamma[c] + support[g] s[c, f] + sd_cell[g] z[c, g, f]

Loadings ``a`` (positive, log-loadings summing to zero within each factor) and
cut-points ``tau`` (ordered, per item and group) are shared by every country
and both iterations: measurement invariance is assumed, and it is what lets a
shift of the answers between iterations be read as a change of ``eta``.  The
answers enter only through their counts per (cell, item, category): given the
cell's ``eta`` the answers are independent draws of the same categorical
distribution, so the log-likelihood of a cell's answers to an item is
``sum_m n[k, j, m] log p[k, j, m]`` — the per-respondent log-likelihood
summed, computed once per category instead of once per answer.
See ``methodology/change-model.md`` ("Ordinal respondent-level model").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import CipsWarning, DataError, Flag, Problem
from ..results import Provenance, Result, resolve_seed, to_jsonable
from ..thresholds import MIN_CELL
from . import _sampling
from ._model import (SHARE_COLUMNS, SUPPORT_COLUMNS, _check_supported, _interval, cell_probabilities,
                     posterior_tables_dict, support_summaries)

__all__ = ["OrdinalChangeResult", "fit_ordinal"]

#: Prior sd of the first-iteration latent means (logit units; they are not pooled).
BASE_PRIOR = 1.5
#: Prior sd of the centre of an item's cut-points, and of the log of the gaps between them (logit units).
CUT_PRIOR, GAP_PRIOR = 3.0, 1.0
#: Prior sd of the log-loadings around their factor's geometric mean.
LOADING_PRIOR = 0.5
#: Prior sd of drift and support effects; prior scale of the half-normal sds (logit units).
EFFECT_PRIOR, SD_PRIOR = 1.0, 0.5
#: NUTS target acceptance rate of the nutpie path (0.95: smaller steps near small sd_cell).
TARGET_ACCEPT = 0.95
#: Default minimal important difference: 0.25 points on the 0-10 scale, converted to latent units.
MID_POINTS = 0.25

#: Posterior variables every sampler reports (and the gates check).
_REPORTED = ["loading", "cut", "baseline", "drift", "support", "sd_factor", "factor_effect", "sd_country",
             "country_effect", "sd_cell", "change", "eta"]
_HYPER = ["drift", "support", "sd_factor", "factor_effect", "sd_country", "country_effect", "sd_cell"]


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


# ============================================================================================ data
@dataclass
class _Counts:
    """The answers collapsed to counts, and every index the model needs."""

    counts: np.ndarray          # (R, K) counts of the observation rows (cell x item with answers)
    row_cell: np.ndarray        # (R,) cell of each row
    row_item: np.ndarray        # (R,) item (position in items)
    row_gi: np.ndarray          # (R,) (group, item) pair: the cut-points
    row_f: np.ndarray           # (R,) factor of the item
    cells: pd.DataFrame         # country, iteration, group, n (respondents with an answer) — model cells
    cell_c: np.ndarray          # (N,) country index
    cell_g: np.ndarray          # (N,) group index
    cell_t2: np.ndarray         # (N,) 1.0 at the last iteration
    cell_p: np.ndarray          # (N,) pair index (0 for first-iteration cells; multiplied by cell_t2)
    pairs: pd.DataFrame         # country, group, n_1, n_2
    pair_c: np.ndarray          # (P,) index in rep_countries
    pair_g: np.ndarray          # (P,)
    sup: np.ndarray             # (P, F) 0/1
    countries: list
    rep_countries: list
    groups: list
    factors: list
    items: list
    item_f: np.ndarray          # (J,) factor of each item
    gi: list                    # (group, item) pairs with cut-points
    basis: np.ndarray           # (J, J - F) zero-sum-within-factor basis of the log-loadings
    points: int
    first: Any
    last: Any
    dropped: pd.DataFrame       # last-iteration cells without a first-iteration cell (not modelled)
    has_support: bool
    weighted: bool              # the data carry unequal weights (that this likelihood ignores)


def _zero_sum_blocks(item_f: np.ndarray, F: int) -> np.ndarray:
    """Orthonormal basis of the vectors over items that sum to zero within every factor (J, J - F)."""
    cols = []
    J = len(item_f)
    for f in range(F):                                   # loop over the (few) factors only
        idx = np.flatnonzero(item_f == f)
        k = idx.size
        if k < 2:
            continue
        u, _, _ = np.linalg.svd(np.eye(k) - 1.0 / k)
        block = np.zeros((J, k - 1))
        block[idx] = u[:, : k - 1]
        cols.append(block)
    return np.hstack(cols) if cols else np.zeros((J, 0))


def _as_list(value: Any, name: str) -> list | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    try:
        return list(value)
    except TypeError:
        msg = f"{name}= must be a name or a list of names; got {value!r}."
        raise DataError(msg, [Problem("argument", msg, column=name, value=repr(value))]) from None


def _check_choice(data: Any, factors: Any, groups: Any) -> tuple[pd.DataFrame, Any, list, list, list]:
    """The survey's frame and instrument, and the validated ``factors=`` and ``groups=``."""
    frame = getattr(data, "frame", None)
    inst = getattr(data, "instrument", None)
    if not isinstance(frame, pd.DataFrame) or inst is None:
        msg = "fit_ordinal() needs a SurveyData (cs.load(...) or cs.simulate(...).data)."
        raise DataError(msg, [Problem("argument", msg, value=type(data).__name__)])
    key_ids = [f.id for f in inst.key_factors]
    all_ids = {f.id: f.kind for f in inst.factors}
    factors = _as_list(factors, "factors")
    if factors is None:
        factors = key_ids
    probs = []
    for f in factors:
        if f not in all_ids:
            probs.append(Problem("factor_unknown", f"Unknown factor: not in the instrument (key factors: {key_ids}).",
                                 column="factors", value=f))
        elif all_ids[f] != "key_factor":
            probs.append(Problem("factor_not_latent", "Not a key factor (an index of items from several factors has "
                                 "no latent variable of its own); give key factors.", column="factors", value=f))
    if len(set(factors)) != len(factors):
        probs.append(Problem("factor_duplicate", "A factor is named twice.", column="factors", value=factors))
    if not factors:
        probs.append(Problem("factor_none", "No factor to model.", column="factors", value=factors))
    present = list(data.groups) if hasattr(data, "groups") else sorted(frame["group"].unique())
    groups = _as_list(groups, "groups")
    if groups is None:
        groups = present
    for g in groups:
        if g not in present:
            probs.append(Problem("group_unknown", f"Unknown respondent group (present: {present}).", column="groups",
                                 value=g))
    if probs:
        raise DataError(f"fit_ordinal(): {len(probs)} problem(s) with factors=/groups=.", probs)
    return frame, inst, key_ids, list(factors), list(groups)


def _items_of(inst: Any, factors: list, groups: list) -> tuple[list, np.ndarray]:
    """The items of ``factors`` asked of at least one of ``groups``, and the factor index of each."""
    items, item_f = [], []
    for fi, f in enumerate(factors):
        for i in inst.factor_items(f):
            if any(g in inst.item(i).groups for g in groups):
                items.append(i)
                item_f.append(fi)
    item_f = np.asarray(item_f, dtype=np.int64)
    no_items = [f for fi, f in enumerate(factors) if not (item_f == fi).any()]
    if no_items:
        raise DataError("fit_ordinal(): factors without items asked of the chosen groups.",
                        [Problem("factor_no_items", "No item of this factor is asked of the chosen groups.",
                                 column="factors", value=f) for f in no_items])
    return items, item_f


def _two_iterations(frame: pd.DataFrame, groups: list) -> tuple[pd.DataFrame, int, int]:
    """The rows of ``groups`` at the first and last iteration (a DataError with fewer than two)."""
    sub = frame[frame["group"].isin(groups).to_numpy()]
    its = sorted(int(t) for t in pd.unique(sub["iteration"]))
    if len(its) < 2:
        msg = (f"fit_ordinal() needs two iterations; the data of groups {groups} have only {its}. The change "
               "model compares the first and the last iteration of each country and group.")
        raise DataError(msg, [Problem("no_second_iteration", msg, column="iteration", value=its)])
    first, last = its[0], its[-1]
    return sub[sub["iteration"].isin([first, last]).to_numpy()], first, last


def _count_answers(sub: pd.DataFrame, inst: Any, items: list, groups: list,
                   K: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Respondents' answers -> counts per cell x item x category; the cells with answers and the items asked."""
    J = len(items)
    gpos = {g: i for i, g in enumerate(groups)}
    cell_id, cell_uniq = pd.MultiIndex.from_frame(sub[["country", "iteration", "group"]]).factorize(sort=True)
    cell_id = np.asarray(cell_id, dtype=np.int64)
    N0 = len(cell_uniq)
    counts = np.zeros(N0 * J * K, dtype=np.int64)
    answered = np.zeros(len(sub), dtype=bool)
    asked = np.zeros((len(groups), J), dtype=bool)
    grp = sub["group"].to_numpy(dtype=object)
    for g in groups:                                     # loop over the respondent groups (two) only
        jg = np.array([j for j, i in enumerate(items) if g in inst.item(i).groups], dtype=np.int64)
        if jg.size == 0:
            continue
        asked[gpos[g], jg] = True
        rows = np.flatnonzero(grp == g)
        codes = sub.iloc[rows][[items[j] for j in jg]].to_numpy(dtype=float)
        valid = np.isfinite(codes) & (codes >= 1) & (codes <= K) & (codes == np.round(codes))
        code0 = np.where(valid, codes, 1).astype(np.int64) - 1
        flat = (cell_id[rows][:, None] * J + jg[None, :]) * K + code0
        counts += np.bincount(flat[valid], minlength=N0 * J * K)
        answered[rows] = valid.any(axis=1)
    counts = counts.reshape(N0, J, K)
    cells = cell_uniq.to_frame(index=False)
    cells.columns = ["country", "iteration", "group"]
    cells["n"] = np.bincount(cell_id[answered], minlength=N0)
    nonempty = cells["n"].to_numpy() > 0
    return cells[nonempty].reset_index(drop=True), counts[nonempty], asked


def _pair_cells(cells: pd.DataFrame, counts: np.ndarray, groups: list, first: int,
                last: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray, pd.DataFrame]:
    """Pairs (country, group) observed at both iterations; last-iteration cells without a pair are dropped.

    Returns ``(pairs, cells, counts, in_pair, dropped)``.
    """
    gpos = {g: i for i, g in enumerate(groups)}
    at1 = cells[cells["iteration"] == first].set_index(["country", "group"])["n"]
    at2 = cells[cells["iteration"] == last].set_index(["country", "group"])["n"]
    both = at1.index.intersection(at2.index)
    if len(both) == 0:
        msg = (f"fit_ordinal(): no (country, group) has answers at both iteration {first} and iteration {last}: "
               "there is no change to model.")
        raise DataError(msg, [Problem("no_second_iteration", msg, column="iteration", value=[first, last])])
    pairs = pd.DataFrame({"country": both.get_level_values(0), "group": both.get_level_values(1)})
    pairs["_g"] = pairs["group"].map(gpos)
    pairs = pairs.sort_values(["country", "_g"], key=lambda s: s.astype(str) if s.name == "country" else s,
                              kind="stable").drop(columns="_g").reset_index(drop=True)
    pidx = pd.MultiIndex.from_frame(pairs[["country", "group"]])
    pairs["n_1"] = at1.reindex(pidx).to_numpy()
    pairs["n_2"] = at2.reindex(pidx).to_numpy()
    in_pair = pidx.get_indexer(pd.MultiIndex.from_frame(cells[["country", "group"]]))
    drop = (cells["iteration"].to_numpy() == last) & (in_pair < 0)
    dropped = cells.loc[drop, ["country", "iteration", "group", "n"]].reset_index(drop=True)
    keep = ~drop
    return pairs, cells[keep].reset_index(drop=True), counts[keep], in_pair[keep], dropped


def _support_matrix(supported: Any, frame: pd.DataFrame, key_ids: list, pairs: pd.DataFrame,
                    factors: list) -> np.ndarray:
    """Programme support (pairs x factors) from the ``supported=`` table; zeros without one."""
    sup = np.zeros((len(pairs), len(factors)))
    if supported is None:
        return sup
    tab = _check_supported(supported, set(pd.unique(frame["country"])), tuple(key_ids))
    wide = tab.pivot(index="country", columns="factor", values="supported")
    sup_raw = wide.reindex(index=pairs["country"].to_numpy(), columns=factors).to_numpy(dtype=float)
    miss = np.isnan(sup_raw)
    if miss.any():
        seen = {}
        for p, f in zip(*np.nonzero(miss)):
            k = (_py(pairs.at[p, "country"]), factors[f])
            seen.setdefault(k, Problem("supported_missing", "No supported= row for this country and factor "
                                       "(observed at both iterations).", value={"country": k[0], "factor": k[1]}))
        raise DataError(f"supported= has no row for {len(seen)} (country, factor) pair(s) observed at both "
                        "iterations.", list(seen.values()))
    return sup_raw


def _collapse(data: Any, supported: Any, factors: Any, groups: Any) -> _Counts:
    """Respondents' answers collapsed to counts per cell x item x category, with every index the model needs."""
    frame, inst, key_ids, factors, groups = _check_choice(data, factors, groups)
    K = int(inst.scale.points)
    items, item_f = _items_of(inst, factors, groups)
    J, F = len(items), len(factors)
    sub, first, last = _two_iterations(frame, groups)
    cells, counts, asked = _count_answers(sub, inst, items, groups, K)
    pairs, cells, counts, in_pair, dropped = _pair_cells(cells, counts, groups, first, last)
    gpos = {g: i for i, g in enumerate(groups)}
    countries = sorted(pd.unique(cells["country"]).tolist(), key=str)
    rep_countries = sorted(pd.unique(pairs["country"]).tolist(), key=str)
    cpos = {c: i for i, c in enumerate(countries)}
    rpos = {c: i for i, c in enumerate(rep_countries)}
    cell_c = cells["country"].map(cpos).to_numpy(dtype=np.int64)
    cell_g = cells["group"].map(gpos).to_numpy(dtype=np.int64)
    cell_t2 = (cells["iteration"].to_numpy() == last).astype(float)
    cell_p = np.where(cell_t2 > 0, in_pair, 0).astype(np.int64)
    # observation rows: cell x item asked, with answers
    gi_pairs = [(groups[g], items[j]) for g in range(len(groups)) for j in range(J) if asked[g, j]]
    gi_index = -np.ones((len(groups), J), dtype=np.int64)
    gi_index[asked] = np.arange(int(asked.sum()))
    ok = asked[cell_g] & (counts.sum(axis=2) > 0)
    rc, rj = np.nonzero(ok)
    sup = _support_matrix(supported, frame, key_ids, pairs, factors)
    w = frame["weight"].to_numpy(dtype=float) if "weight" in frame.columns else np.ones(1)
    weighted = bool(np.isfinite(w).all() and w.size > 1 and np.ptp(w) > 1e-12 * max(1.0, float(np.abs(w).max())))
    return _Counts(counts=counts[rc, rj].astype(float), row_cell=rc.astype(np.int64), row_item=rj.astype(np.int64),
                   row_gi=gi_index[cell_g[rc], rj], row_f=item_f[rj], cells=cells, cell_c=cell_c, cell_g=cell_g,
                   cell_t2=cell_t2, cell_p=cell_p, pairs=pairs,
                   pair_c=pairs["country"].map(rpos).to_numpy(dtype=np.int64),
                   pair_g=pairs["group"].map(gpos).to_numpy(dtype=np.int64), sup=sup, countries=countries,
                   rep_countries=rep_countries, groups=list(groups), factors=list(factors), items=items,
                   item_f=item_f, gi=gi_pairs, basis=_zero_sum_blocks(item_f, F), points=K, first=first, last=last,
                   dropped=dropped, has_support=supported is not None, weighted=weighted)


# =========================================================================================== model
def _shape(d: _Counts) -> tuple:
    return (len(d.counts), len(d.cells), len(d.gi), len(d.items), len(d.factors), len(d.groups), len(d.countries),
            len(d.rep_countries), len(d.pairs), d.points, d.basis.shape[1], d.has_support)


def _generic_coords(shape: tuple) -> dict:
    R, N, GI, J, F, G, C, CR, P, K, nu, _ = shape
    return {"group": list(range(G)), "factor": list(range(F)), "country": list(range(C)),
            "rep_country": list(range(CR)), "pair": list(range(P)), "cell": list(range(N)), "item": list(range(J)),
            "group_item": list(range(GI)), "threshold": list(range(1, K)), "gap": list(range(max(K - 2, 0))),
            "free_loading": list(range(nu))}


def _coords(d: _Counts) -> dict:
    return {"group": [str(g) for g in d.groups], "factor": [str(f) for f in d.factors],
            "country": [str(c) for c in d.countries], "rep_country": [str(c) for c in d.rep_countries],
            "pair": [f"{c}|{g}" for c, g in d.pairs[["country", "group"]].itertuples(index=False)],
            "cell": [f"{c}|{t}|{g}" for c, t, g in d.cells[["country", "iteration", "group"]].itertuples(index=False)],
            "item": [str(i) for i in d.items], "group_item": [f"{g}|{i}" for g, i in d.gi],
            "threshold": list(range(1, d.points)), "gap": list(range(1, max(d.points - 1, 1)))}


def _model_data(d: _Counts) -> dict[str, np.ndarray]:
    return {"n": d.counts, "row_cell": d.row_cell, "row_item": d.row_item, "row_gi": d.row_gi, "row_f": d.row_f,
            "cell_c": d.cell_c, "cell_g": d.cell_g, "cell_t2": d.cell_t2, "cell_p": d.cell_p, "pair_c": d.pair_c,
            "pair_g": d.pair_g, "sup": d.sup, "basis": d.basis}


def _ordered_logit_logp(pt: Any, x: Any, cut: Any) -> Any:
    """Log-probabilities (R, K) of the K ordered categories given the linear predictor x (R,) and cut-points
    (R, K-1), computed stably: log[s(b - x) - s(a - x)] = log s(b - x) + log s(x - a) + log(1 - e^(a - b))."""
    z = cut - x[:, None]
    log_f = -pt.softplus(-z)                     # log P(y <= m)
    log_s = -pt.softplus(z)                      # log P(y > m)
    mid = log_f[:, 1:] + log_s[:, :-1] + pt.log1mexp(cut[:, :-1] - cut[:, 1:])
    return pt.concatenate([log_f[:, :1], mid, log_s[:, -1:]], axis=1)


def _build(shape: tuple, coords: dict):
    R, N, GI, J, F, G, C, CR, P, K, nu, has_support = shape

    def build():
        import pymc as pm
        import pytensor.tensor as pt

        with pm.Model(coords=coords) as model:
            n = pm.Data("n", np.zeros((R, K)))
            row_cell = pm.Data("row_cell", np.zeros(R, dtype=np.int64))
            row_item = pm.Data("row_item", np.zeros(R, dtype=np.int64))
            row_gi = pm.Data("row_gi", np.zeros(R, dtype=np.int64))
            row_f = pm.Data("row_f", np.zeros(R, dtype=np.int64))
            cell_c = pm.Data("cell_c", np.zeros(N, dtype=np.int64))
            cell_g = pm.Data("cell_g", np.zeros(N, dtype=np.int64))
            cell_t2 = pm.Data("cell_t2", np.zeros(N))
            cell_p = pm.Data("cell_p", np.zeros(N, dtype=np.int64))
            pair_c = pm.Data("pair_c", np.zeros(P, dtype=np.int64))
            pair_g = pm.Data("pair_g", np.zeros(P, dtype=np.int64))
            sup = pm.Data("sup", np.zeros((P, F)))
            basis = pm.Data("basis", np.zeros((J, nu)))
            # measurement model, shared by countries and iterations
            if nu:
                loading_z = pm.Normal("loading_z", 0.0, LOADING_PRIOR, dims="free_loading")
                a = pm.Deterministic("loading", pt.exp(pt.dot(basis, loading_z)), dims="item")
            else:
                a = pm.Deterministic("loading", pt.ones(J), dims="item")
            # ordered cut-points: a centre and K-2 log-gaps per (group, item)
            cut_centre = pm.Normal("cut_centre", 0.0, CUT_PRIOR, dims="group_item")
            if K > 2:
                log_gap = pm.Normal("cut_log_gap", 0.0, GAP_PRIOR, dims=("group_item", "gap"))
                steps = pt.concatenate([pt.zeros((GI, 1)), pt.cumsum(pt.exp(log_gap), axis=1)], axis=1)
                steps = steps - steps.mean(axis=1, keepdims=True)
            else:
                steps = pt.zeros((GI, 1))
            cut = pm.Deterministic("cut", cut_centre[:, None] + steps, dims=("group_item", "threshold"))
            # first-iteration latent means: not pooled, zero mean over countries per group x factor (location)
            if C > 1:
                base = pm.ZeroSumNormal("baseline", BASE_PRIOR, dims=("group", "factor", "country"))
            else:
                base = pm.Deterministic("baseline", pt.zeros((G, F, C)), dims=("group", "factor", "country"))
            # change: drift + factor + country + support + cell deviation (non-centred)
            drift = pm.Normal("drift", 0.0, EFFECT_PRIOR, dims="group")
            m = drift[pair_g][:, None] + pt.zeros((P, F))
            if has_support:
                support = pm.Normal("support", 0.0, EFFECT_PRIOR, dims="group")
                m = m + support[pair_g][:, None] * sup
            if F > 1:
                sd_factor = pm.HalfNormal("sd_factor", SD_PRIOR)
                factor_z = pm.ZeroSumNormal("factor_z", 1.0, dims="factor")
                m = m + pm.Deterministic("factor_effect", sd_factor * factor_z, dims="factor")[None, :]
            if CR > 1:
                sd_country = pm.HalfNormal("sd_country", SD_PRIOR)
                country_z = pm.ZeroSumNormal("country_z", 1.0, dims="rep_country")
                m = m + pm.Deterministic("country_effect", sd_country * country_z, dims="rep_country")[pair_c][:, None]
            sd_cell = pm.HalfNormal("sd_cell", SD_PRIOR, dims="group")
            cell_z = pm.Normal("cell_z", 0.0, 1.0, dims=("pair", "factor"))
            change = pm.Deterministic("change", m + sd_cell[pair_g][:, None] * cell_z, dims=("pair", "factor"))
            eta = pm.Deterministic("eta", base.dimshuffle(0, 2, 1)[cell_g, cell_c] + cell_t2[:, None] * change[cell_p],
                                   dims=("cell", "factor"))
            x = a[row_item] * eta[row_cell, row_f]
            pm.Potential("loglik", pt.sum(n * _ordered_logit_logp(pt, x, cut[row_gi])))
        return model
    return build


# ====================================================================== the density for nutpie (no compilation)
def _zero_sum_basis(k: int) -> np.ndarray:
    """Orthonormal basis (k, k-1) of the vectors of R^k summing to zero (the ZeroSumNormal's subspace)."""
    if k < 2:
        return np.zeros((k, 0))
    u, _, _ = np.linalg.svd(np.eye(k) - 1.0 / k)
    return u[:, : k - 1]


class _Density:
    """Log posterior density and its gradient in NumPy, for :func:`nutpie.from_pyfunc`.

    The same model as :func:`_build` (same priors; the ZeroSumNormals are written
    as an orthonormal basis of the sum-zero subspace times standard normals, the
    sds are sampled on the log scale with their Jacobian).  Sums over
    observation rows are sparse matrix products, so one evaluation is a few
    dozen array operations whatever the size of the survey.
    """

    def __init__(self, d: _Counts):
        from scipy import sparse

        self.d = d
        R, K = d.counts.shape
        self.R, self.K = R, K
        self.N, self.J, self.F, self.G = len(d.cells), len(d.items), len(d.factors), len(d.groups)
        self.C, self.CR, self.P, self.GI = len(d.countries), len(d.rep_countries), len(d.pairs), len(d.gi)
        self.nu = d.basis.shape[1]
        self.BC, self.BF, self.BR = _zero_sum_basis(self.C), _zero_sum_basis(self.F), _zero_sum_basis(self.CR)
        sizes = [("lz", self.nu), ("cc", self.GI), ("lg", self.GI * max(K - 2, 0)),
                 ("ub", self.G * self.F * max(self.C - 1, 0)), ("drift", self.G),
                 ("support", self.G if d.has_support else 0), ("lsf", 1 if self.F > 1 else 0),
                 ("uf", max(self.F - 1, 0)), ("lsc", 1 if self.CR > 1 else 0), ("uc", max(self.CR - 1, 0)),
                 ("lsd", self.G), ("cell_z", self.P * self.F)]
        off = np.cumsum([0] + [s for _, s in sizes])
        self.sl = {name: slice(int(off[i]), int(off[i + 1])) for i, (name, _) in enumerate(sizes)}
        self.ndim = int(off[-1])
        ones = np.ones(R)
        rr = np.arange(R)
        self.S_gi = sparse.csr_matrix((ones, (d.row_gi, rr)), shape=(self.GI, R))
        self.S_item = sparse.csr_matrix((ones, (d.row_item, rr)), shape=(self.J, R))
        self.S_eta = sparse.csr_matrix((ones, (d.row_cell * self.F + d.row_f, rr)), shape=(self.N * self.F, R))
        self.base_idx = d.cell_g * self.C + d.cell_c                       # (N,) into (G*C)
        self.S_base = sparse.csr_matrix((np.ones(self.N), (self.base_idx, np.arange(self.N))),
                                        shape=(self.G * self.C, self.N))
        self.t2 = np.flatnonzero(d.cell_t2 > 0)                           # last-iteration cells
        self.t2_pair = d.cell_p[self.t2]
        self.eta_idx = d.row_cell * self.F + d.row_f
        self.n = d.counts
        self.n_mid_gi = np.asarray(self.S_gi @ d.counts[:, 1:-1])          # middle-category counts per (group, item)

    # ---------------------------------------------------------------------------------- pieces
    def unpack(self, x: np.ndarray) -> dict[str, np.ndarray]:
        d, s, G, F, K = self.d, self.sl, self.G, self.F, self.K
        out: dict[str, Any] = {}
        log_a = d.basis @ x[s["lz"]]
        out["loading"] = np.exp(log_a)
        cc = x[s["cc"]]
        if K > 2:
            e = np.exp(x[s["lg"]].reshape(self.GI, K - 2))
            steps = np.concatenate([np.zeros((self.GI, 1)), np.cumsum(e, axis=1)], axis=1)
            steps -= steps.mean(axis=1, keepdims=True)
        else:
            e, steps = np.zeros((self.GI, 0)), np.zeros((self.GI, 1))
        out["_e"] = e
        out["cut"] = cc[:, None] + steps
        out["baseline"] = (x[s["ub"]].reshape(G * F, -1) @ self.BC.T).reshape(G, F, self.C) if self.C > 1 else \
            np.zeros((G, F, self.C))
        out["drift"] = x[s["drift"]]
        m = out["drift"][d.pair_g][:, None] + np.zeros((self.P, F))
        if d.has_support:
            out["support"] = x[s["support"]]
            m = m + out["support"][d.pair_g][:, None] * d.sup
        if F > 1:
            out["sd_factor"] = math.exp(float(x[s["lsf"]][0]))
            out["factor_effect"] = out["sd_factor"] * (self.BF @ x[s["uf"]])
            m = m + out["factor_effect"][None, :]
        if self.CR > 1:
            out["sd_country"] = math.exp(float(x[s["lsc"]][0]))
            out["country_effect"] = out["sd_country"] * (self.BR @ x[s["uc"]])
            m = m + out["country_effect"][d.pair_c][:, None]
        out["sd_cell"] = np.exp(x[s["lsd"]])
        out["_m"] = m
        out["_z"] = x[s["cell_z"]].reshape(self.P, F)
        out["change"] = m + out["sd_cell"][d.pair_g][:, None] * out["_z"]
        eta = out["baseline"].transpose(0, 2, 1).reshape(G * self.C, F)[self.base_idx]
        eta[self.t2] += out["change"][self.t2_pair]
        out["eta"] = eta
        return out

    def loglik(self, a: np.ndarray, cut: np.ndarray, eta: np.ndarray) -> float:
        """Log-likelihood of the counts: sum over rows and categories of count x log P(category)."""
        d = self.d
        x = a[d.row_item] * eta.ravel()[self.eta_idx]
        return float(np.sum(self.n * _ordered_logit_logp_np(x, cut[d.row_gi])))

    def logp(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        d, s, G, F, K = self.d, self.sl, self.G, self.F, self.K
        x = np.asarray(x, dtype=float)
        v = self.unpack(x)
        a, cut, eta = v["loading"], v["cut"], v["eta"]
        grad = np.zeros(self.ndim)
        # ------------------------------------------------------------ likelihood
        ar = a[d.row_item]
        er = eta.ravel()[self.eta_idx]
        xr = ar * er
        c = cut[d.row_gi]                                          # (R, K-1)
        z = c - xr[:, None]
        ez = np.exp(-np.abs(z))
        sp = np.log1p(ez)                                          # log sigma(z) = -(max(-z, 0) + sp)
        sig = np.where(z >= 0, 1.0, ez) / (1.0 + ez)               # sigma(z), stable both ways
        n = self.n
        ll = -float(np.sum(n[:, :-1] * (np.maximum(-z, 0.0) + sp)) + np.sum(n[:, 1:] * (np.maximum(z, 0.0) + sp)))
        gz = n[:, :-1] * (1.0 - sig) - n[:, 1:] * sig             # d/dz_m
        gx = -gz.sum(axis=1)
        # loadings
        g_a = self.S_item @ (gx * er)
        grad[s["lz"]] = d.basis.T @ (g_a * a)
        # cut-points; the gap terms log(1 - exp(tau_m-1 - tau_m)) depend on the (group, item) only
        g_tau = np.asarray(self.S_gi @ gz)                         # (GI, K-1)
        if K > 2:
            delta = np.diff(cut, axis=1)
            ll += float(np.sum(self.n_mid_gi * np.log(-np.expm1(-delta))))
            gg = self.n_mid_gi / np.expm1(delta)
            g_tau[:, 1:] += gg
            g_tau[:, :-1] -= gg
        grad[s["cc"]] = g_tau.sum(axis=1)
        if K > 2:
            g_tc = g_tau - g_tau.mean(axis=1, keepdims=True)
            g_e = np.cumsum(g_tc[:, :0:-1], axis=1)[:, ::-1]      # sum over m > i of g_tc[m]
            grad[s["lg"]] = (g_e * v["_e"]).ravel()
        # latent means
        g_eta = np.asarray(self.S_eta @ (gx * ar)).reshape(self.N, F)
        if self.C > 1:
            g_base = np.asarray(self.S_base @ g_eta).reshape(G, self.C, F).transpose(0, 2, 1)   # (G, F, C)
            grad[s["ub"]] = (g_base.reshape(G * F, self.C) @ self.BC).ravel()
        g_change = np.zeros((self.P, F))
        g_change[self.t2_pair] += g_eta[self.t2]
        # ------------------------------------------------------------ change model (non-centred cell deviations)
        sd = v["sd_cell"][d.pair_g][:, None]
        r = g_change                                              # d logp / d change = d logp / d m
        grad[s["cell_z"]] = (r * sd).ravel()
        grad[s["lsd"]] = np.bincount(d.pair_g, (r * sd * v["_z"]).sum(axis=1), minlength=G)
        lp = 0.0
        grad[s["drift"]] = np.bincount(d.pair_g, r.sum(axis=1), minlength=G)
        if d.has_support:
            grad[s["support"]] = np.bincount(d.pair_g, (r * d.sup).sum(axis=1), minlength=G)
        if F > 1:
            g_beta = r.sum(axis=0)
            sf, uf = v["sd_factor"], x[s["uf"]]
            grad[s["uf"]] = sf * (self.BF.T @ g_beta)
            grad[s["lsf"]] = float(v["factor_effect"] @ g_beta)
        if self.CR > 1:
            g_gamma = np.bincount(d.pair_c, r.sum(axis=1), minlength=self.CR)
            grad[s["uc"]] = v["sd_country"] * (self.BR.T @ g_gamma)
            grad[s["lsc"]] = float(v["country_effect"] @ g_gamma)
        # ------------------------------------------------------------ priors
        for name, scale in (("lz", LOADING_PRIOR), ("cc", CUT_PRIOR), ("lg", GAP_PRIOR), ("ub", BASE_PRIOR),
                            ("drift", EFFECT_PRIOR), ("support", EFFECT_PRIOR), ("uf", 1.0), ("uc", 1.0),
                            ("cell_z", 1.0)):
            xs = x[s[name]]
            lp -= 0.5 * float(xs @ xs) / scale ** 2
            grad[s[name]] -= xs / scale ** 2
        for name in ("lsf", "lsc", "lsd"):                         # HalfNormal(SD_PRIOR) on exp(x), + Jacobian x
            xs = x[s[name]]
            e2 = np.exp(2.0 * xs)
            lp += float(np.sum(-0.5 * e2 / SD_PRIOR ** 2 + xs))
            grad[s[name]] += -e2 / SD_PRIOR ** 2 + 1.0
        return ll + lp, grad

    def initial_point(self, seed: Any) -> np.ndarray:
        rng = np.random.default_rng(seed)
        x = rng.uniform(-0.2, 0.2, size=self.ndim)
        for name in ("lsf", "lsc", "lsd"):
            x[self.sl[name]] += math.log(0.2)
        return x

    def expanded(self) -> list[tuple[str, tuple[int, ...], tuple[str, ...]]]:
        G, F, P, N = self.G, self.F, self.P, self.N
        spec = [("loading", (self.J,), ("item",)), ("cut", (self.GI, self.K - 1), ("group_item", "threshold")),
                ("baseline", (G, F, self.C), ("group", "factor", "country")), ("drift", (G,), ("group",))]
        if self.d.has_support:
            spec.append(("support", (G,), ("group",)))
        if F > 1:
            spec += [("sd_factor", (), ()), ("factor_effect", (F,), ("factor",))]
        if self.CR > 1:
            spec += [("sd_country", (), ()), ("country_effect", (self.CR,), ("rep_country",))]
        spec += [("sd_cell", (G,), ("group",)), ("change", (P, F), ("pair", "factor")),
                 ("eta", (N, F), ("cell", "factor"))]
        return spec


def _ordered_logit_logp_np(x: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """NumPy twin of :func:`_ordered_logit_logp` (R, K)."""
    z = cut - x[:, None]
    log_f = -np.logaddexp(0.0, -z)
    log_s = -np.logaddexp(0.0, z)
    mid = log_f[:, 1:] + log_s[:, :-1] + np.log(-np.expm1(cut[:, :-1] - cut[:, 1:]))
    return np.concatenate([log_f[:, :1], mid, log_s[:, -1:]], axis=1)


def _sample_density(dens: _Density, coords: dict, *, draws: int, tune: int, chains: int, seed: int):
    """Sample the NumPy density with nutpie (nothing to compile)."""
    import time

    from ._logp import nutpie_model

    t0 = time.perf_counter()
    model = nutpie_model(dens, coords)
    return _sampling.sample_density(model, draws=draws, tune=tune, chains=chains, seed=seed,
                                    setup_s=time.perf_counter() - t0, target_accept=TARGET_ACCEPT)


# ========================================================================================== result
@dataclass(frozen=True)
class OrdinalChangeResult(Result):
    """Posterior of the ordinal respondent-level change model (latent logit scale).

    Attributes
    ----------
    cells : pandas.DataFrame
        ``country, group, factor, supported, suppressed, n_1, n_2`` in the
        order of the posterior's ``pair`` x ``factor`` change array (pairs
        outer).
    prob_improved : pandas.DataFrame
        Per cell: ``country, group, factor, mean, ci_low, ci_high,
        p_improved`` (P(change > 0)), ``p_above_mid``, ``sd, supported,
        suppressed``; changes on the latent scale (logits of an item of
        average loading).
    support_effect : pandas.DataFrame
        Per group and ``"all"``: mean latent change of the supported cells
        minus that of the unsupported ones (``mean, sd, ci_low, ci_high,
        p_positive, n_supported, n_unsupported``); empty without
        ``supported=``.
    share_improved : pandas.DataFrame
        ``group, set, n_cells, mean, sd, ci_low, ci_high``: posterior share
        of supported / unsupported cells whose latent change is positive,
        and their difference.
    hyper : pandas.DataFrame
        Summary of the change model's parameters (drift, support, sds,
        factor and country effects) with R-hat and ESS.
    measurement : pandas.DataFrame
        Posterior means of the loadings (``item, factor, loading``) and
        cut-points (``group, item, threshold, cut``) in long form.
    counts : pandas.DataFrame
        The data the likelihood saw: ``country, iteration, group, item,
        category, count``.
    idata : arviz.InferenceData
        ``posterior`` (every parameter, ``change`` (pair, factor), ``eta``
        (cell, factor)), ``sample_stats``, ``observed_data`` (the counts).
    diagnostics : dict
        As :class:`ChangeResult`: R-hat, ESS, divergences, timings, plus the
        numbers of respondents, answers, observation rows and parameters.
    reliable : bool
        Whether every gate passed.
    mid : float
        The minimal important difference on the latent scale.
    points_per_unit : float
        Change of the 0-10 indicator per unit of latent change, at the
        fitted parameters (average over the observed cells and items): the
        scale's translation, used for the default ``mid``.
    ci : float
        Level of the intervals.
    """

    cells: pd.DataFrame
    prob_improved: pd.DataFrame
    support_effect: pd.DataFrame
    share_improved: pd.DataFrame
    hyper: pd.DataFrame
    measurement: pd.DataFrame
    counts: pd.DataFrame
    idata: Any
    diagnostics: dict
    reliable: bool = True
    mid: float = 0.0
    points_per_unit: float = math.nan
    ci: float = 0.95

    def change_draws(self) -> np.ndarray:
        """Posterior draws of every cell's latent change, shape ``(samples, cells)`` (chains stacked)."""
        v = self.idata.posterior["change"].values
        return v.reshape(v.shape[0] * v.shape[1], -1)

    def to_frame(self) -> pd.DataFrame:
        """The per-cell table ``prob_improved``."""
        return self.prob_improved

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of the tables and diagnostics (the InferenceData and counts are left out)."""
        return posterior_tables_dict(self, ("reliable", "mid", "points_per_unit", "ci"))


def _tables(d: _Counts, draws: np.ndarray, ci: float, mid: float) -> tuple[pd.DataFrame, ...]:
    P, F = d.sup.shape
    cells = pd.DataFrame({"country": np.repeat(d.pairs["country"].to_numpy(dtype=object), F),
                          "group": np.repeat(d.pairs["group"].to_numpy(dtype=object), F),
                          "factor": np.tile(np.array(d.factors, dtype=object), P),
                          "supported": d.sup.ravel().astype(bool),
                          "suppressed": np.repeat((np.minimum(d.pairs["n_1"], d.pairs["n_2"]) < MIN_CELL).to_numpy(),
                                                  F),
                          "n_1": np.repeat(d.pairs["n_1"].to_numpy(), F),
                          "n_2": np.repeat(d.pairs["n_2"].to_numpy(), F)})
    prob = cell_probabilities(cells, draws, ci, mid)
    if d.has_support:
        eff, share, _ = support_summaries(cells, draws, d.groups, ci)
    else:
        eff, share = pd.DataFrame(columns=SUPPORT_COLUMNS), pd.DataFrame(columns=SHARE_COLUMNS)
    return cells, prob, eff, share


def _hyper_table(idata: Any, ci: float) -> pd.DataFrame:
    import arviz as az

    post = idata.posterior
    names = [n for n in _HYPER if n in post]
    rh, eb, et = az.rhat(post[names]), az.ess(post[names], method="bulk"), az.ess(post[names], method="tail")
    rows = []
    for name in names:
        v = post[name].values
        flat = v.reshape(v.shape[0] * v.shape[1], -1)
        dims = [x for x in post[name].dims if x not in ("chain", "draw")]
        labels = [""] if not dims else [str(x) for x in post[name].coords[dims[0]].values]
        lo, hi = _interval(flat, ci)
        for j, lab in enumerate(labels):
            rows.append({"parameter": name, "index": lab, "mean": flat[:, j].mean(), "sd": flat[:, j].std(ddof=1),
                         "ci_low": lo[j], "ci_high": hi[j], "r_hat": float(np.ravel(rh[name].values)[j]),
                         "ess_bulk": float(np.ravel(eb[name].values)[j]),
                         "ess_tail": float(np.ravel(et[name].values)[j])})
    return pd.DataFrame(rows)


def _points_per_unit(d: _Counts, a: np.ndarray, cut: np.ndarray, eta: np.ndarray) -> float:
    """d E[indicator 0-10] / d eta, averaged over the observed rows (weighted by their answers)."""
    from scipy.special import expit

    x = a[d.row_item] * eta[d.row_cell, d.row_f]
    s = expit(cut[d.row_gi] - x[:, None])
    slope = a[d.row_item] * (s * (1.0 - s)).sum(axis=1)          # d E[code] / d eta
    w = d.counts.sum(axis=1)
    return float((slope * w).sum() / w.sum() * 10.0 / (d.points - 1))


def _counts_table(d: _Counts) -> pd.DataFrame:
    R, K = d.counts.shape
    cells = d.cells.iloc[np.repeat(d.row_cell, K)].reset_index(drop=True)
    out = cells[["country", "iteration", "group"]].copy()
    out["item"] = np.repeat(np.array(d.items, dtype=object)[d.row_item], K)
    out["category"] = np.tile(np.arange(1, K + 1), R)
    out["count"] = d.counts.ravel().astype(np.int64)
    return out


def fit_ordinal(data: Any, supported: pd.DataFrame | None = None, *, factors: Any = None, groups: Any = None,
                seed: int | None = None, sampler: str = "nutpie", draws: int = 1000, tune: int = 1000,
                chains: int = 4, strict: bool = True, ci: float = 0.95, mid: float | None = None
                ) -> OrdinalChangeResult:
    """Fit the ordinal respondent-level change model (cumulative logit on latent key factors).

    For methodologists: instead of the cells' indicator estimates, the
    respondents' answers themselves — collapsed to counts per cell x item x
    answer category — enter a cumulative-logit measurement model whose latent
    cell means change between the first and the last iteration; the change is
    decomposed like in :func:`fit` (drift by group, factor and country
    effects, support effect by group, cell deviation).  Changes are on the
    latent logit scale.

    Parameters
    ----------
    data : SurveyData
        Respondent data (``cs.load`` or ``cs.simulate(...).data``); restrict
        the countries for speed with ``data.subset(country=[...])``.
    supported : pandas.DataFrame, optional
        ``country, factor, supported`` (the layout of
        ``simulate(...).truth["supported"]``).  Without it the model has no
        support term and ``support_effect`` is empty.
    factors : str or list of str, optional
        Key factors to model (default: every key factor of the instrument).
        Fewer factors fit faster; indices are not latent factors.
    groups : str or list of str, optional
        Respondent groups (default: every group present).
    seed : int, optional
        Seed of the sampler (``None`` draws one and records it).
    sampler : {"nutpie", "pymc", "numpyro"}
        NUTS implementation.
    draws, tune, chains : int
        Draws and tuning steps per chain, chains.
    strict : bool
        ``True``: failed convergence gates raise :class:`cips_stats.ModelError`;
        ``False``: the result is marked ``reliable = False`` with flags.
    ci : float
        Level of the equal-tailed posterior intervals.
    mid : float, optional
        Minimal important difference on the latent scale for
        ``p_above_mid``; default 0.25 points of the 0-10 indicator converted
        with the fitted ``points_per_unit``.

    Returns
    -------
    OrdinalChangeResult

    Notes
    -----
    Assumes measurement invariance across countries and iterations
    (loadings shared by the groups, cut-points per item and group), answers
    of a cell independent given the cell's latent mean (the respondents'
    own latent deviations are not modelled, which is what allows the
    counts, and it makes the cells' intervals optimistic: a respondent's
    answers to one factor's items are correlated), and a logit link; design weights are **not** used (the change
    is that of the respondents' unweighted latent mean).  Identification:
    first-iteration latent means sum to zero over countries for every group
    and factor, and the log-loadings sum to zero within each factor (the
    latent unit is the logit of an item of average discrimination).  The
    first and the last iteration present are compared; a last-iteration cell
    without a first-iteration cell is left out with a flag.  See
    ``methodology/change-model.md``.

    Examples
    --------
    >>> import cips_stats as cs
    >>> sim = cs.simulate(seed=8, n_countries=4, n_repeat=3, n_officials=80, n_private=60)
    >>> from cips_stats.change._ordinal import _collapse
    >>> cnt = _collapse(sim.data, None, ["audit"], None)      # the counts the likelihood uses
    >>> int(cnt.counts.sum()) == int(sim.data.frame[list(cnt.items)].isin(range(1, 6)).sum().sum())
    True
    >>> res = cs.change.fit_ordinal(sim.data, sim.truth["supported"], factors=["audit"],
    ...                             seed=1, strict=False)  # doctest: +SKIP
    >>> res.prob_improved.columns[:7].tolist()  # doctest: +SKIP
    ['country', 'group', 'factor', 'mean', 'ci_low', 'ci_high', 'p_improved']
    """
    import warnings

    import xarray as xr

    _sampling.check_sampling_args(sampler, draws, tune, chains)
    if not isinstance(ci, (float, int)) or isinstance(ci, bool) or not 0 < float(ci) < 1:
        raise DataError(f"ci= must be a level in (0, 1); got {ci!r}.", [Problem("argument", "Bad level.", column="ci")])
    if mid is not None and (isinstance(mid, bool) or not isinstance(mid, (int, float)) or not math.isfinite(mid)):
        raise DataError(f"mid= must be a number; got {mid!r}.", [Problem("argument", "Bad mid.", column="mid")])
    seed = resolve_seed(seed)
    d = _collapse(data, supported, factors, groups)
    flags: list[Flag] = []
    if len(d.dropped):
        msg = (f"{len(d.dropped)} cell(s) of iteration {d.last} have no iteration-{d.first} cell of the same country "
               "and group; they are left out (no change to estimate).")
        flags.append(Flag("unpaired_cells", msg, "warning", {"cells": to_jsonable(d.dropped)}))
        warnings.warn(msg, CipsWarning, stacklevel=2)
    coords = _coords(d)
    dens = _Density(d)
    if sampler == "nutpie":
        idata, timing = _sample_density(dens, coords, draws=draws, tune=tune, chains=chains, seed=seed)
    else:
        shape = _shape(d)
        idata, timing = _sampling.sample(("ordinal",) + shape + (sampler,), _build(shape, _generic_coords(shape)),
                                         _model_data(d), sampler=sampler, draws=draws, tune=tune, chains=chains,
                                         seed=seed)
    for group in ("posterior", "sample_stats"):
        ds = getattr(idata, group, None)
        if ds is not None:
            present = {k: v for k, v in coords.items() if k in ds.dims}
            if present:
                setattr(idata, group, ds.assign_coords(present))
    post = idata.posterior
    names = [v for v in _REPORTED if v in post]
    counts = xr.DataArray(d.counts, dims=("row", "category"),
                          coords={"row": np.arange(len(d.counts)), "category": np.arange(1, d.points + 1)})
    if "observed_data" in idata.groups():
        del idata.observed_data
    idata.add_groups(observed_data=xr.Dataset({"counts": counts}))
    diag = _sampling.diagnostics(idata, names, timing)
    diag.update({"respondents": int(d.cells["n"].sum()), "answers": int(d.counts.sum()), "rows": int(len(d.counts)),
                 "cells": int(len(d.cells)), "pairs": int(len(d.pairs)),
                 "parameters": int(dens.ndim)})
    reliable, gate_flags = _sampling.gate(diag, strict=strict, what="change.fit_ordinal")
    flags.extend(gate_flags)
    draws_c = post["change"].values.reshape(-1, len(d.pairs) * len(d.factors))
    a_m = post["loading"].values.reshape(-1, len(d.items)).mean(axis=0)
    cut_m = post["cut"].values.reshape((-1,) + post["cut"].shape[2:]).mean(axis=0)
    eta_m = post["eta"].values.reshape((-1,) + post["eta"].shape[2:]).mean(axis=0)
    ppu = _points_per_unit(d, a_m, cut_m, eta_m)
    mid_v = MID_POINTS / ppu if mid is None else float(mid)
    cells, prob, eff, share = _tables(d, draws_c, float(ci), mid_v)
    meas = pd.concat([
        pd.DataFrame({"kind": "loading", "group": None, "item": d.items,
                      "factor": [d.factors[f] for f in d.item_f], "threshold": None, "value": a_m}),
        pd.DataFrame({"kind": "cut", "group": np.repeat([g for g, _ in d.gi], d.points - 1),
                      "item": np.repeat([i for _, i in d.gi], d.points - 1),
                      "factor": np.repeat([d.factors[d.item_f[d.items.index(i)]] for _, i in d.gi], d.points - 1),
                      "threshold": np.tile(np.arange(1, d.points), len(d.gi)), "value": cut_m.ravel()}),
    ], ignore_index=True)
    prov = Provenance.build("change.fit_ordinal", data=data, seed=seed,
                            options={"factors": list(d.factors), "groups": [str(g) for g in d.groups],
                                     "sampler": sampler, "draws": int(draws), "tune": int(tune), "chains": int(chains),
                                     "strict": bool(strict), "ci": float(ci), "mid": mid_v, "first": _py(d.first),
                                     "last": _py(d.last), "supported": d.has_support,
                                     "weights": "not used (unweighted likelihood)", "link": "logit"})
    return OrdinalChangeResult(cells=cells, prob_improved=prob, support_effect=eff, share_improved=share,
                               hyper=_hyper_table(idata, float(ci)), measurement=meas, counts=_counts_table(d),
                               idata=idata, diagnostics=diag, reliable=reliable, mid=mid_v, points_per_unit=ppu,
                               ci=float(ci), provenance=prov, flags=tuple(flags))
