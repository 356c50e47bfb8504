"""lavaan-style model syntax → parameter table.

:func:`parse_syntax` reads the lavaan model syntax (``=~`` loadings, ``~~``
(co)variances, ``~ 1`` intercepts, ``|`` thresholds; modifiers ``1*x`` (fixed),
``NA*x`` (free), ``a*x`` (label; equal labels mean equal parameters),
``c(a, b)*x`` (one modifier per group), ``start(0.5)*x``; ``#``/``!`` comments;
statements over several lines; ``a == b`` equality of two labels) into a list of
statements.  :func:`build_partable` expands them into a parameter table, one row
per parameter and group, with the defaults that ``lavaan::cfa()`` adds.

The table has the columns

``id``      1-based row number;
``lhs, op, rhs``  the parameter (``op`` one of ``=~ ~~ ~1 | ~*~``);
``user``    1 when written in the syntax, 0 when added by default;
``group``   1-based group number;
``free``    0 when fixed, else the 1-based index of the parameter in the vector of
            free parameters.  **Unlike lavaan**, equality constraints are absorbed:
            rows constrained equal share one index, so ``free.max()`` is the number
            of free parameters (lavaan numbers every row and adds ``==`` rows);
``ustart``  the fixed value (or a user start value), NaN otherwise;
``label``   the user label, or the group-1 ``plabel`` for a group-equality
            constraint, else ``""``;
``plabel``  ``".p<id>."``.

Examples
--------
>>> from cips_stats.factor.syntax import build_partable
>>> pt = build_partable("f =~ x1 + x2 + x3")
>>> pt[["lhs", "op", "rhs", "free", "ustart"]].head(4)
  lhs  op rhs  free  ustart
0   f  =~  x1     0     1.0
1   f  =~  x2     1     NaN
2   f  =~  x3     2     NaN
3  x1  ~~  x1     3     NaN
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import ModelError

__all__ = ["Statement", "parse_syntax", "defined_parameters", "build_partable", "GROUP_EQUAL_TYPES", "param_type"]

GROUP_EQUAL_TYPES = (
    "loadings", "intercepts", "means", "thresholds", "residuals", "residual.covariances",
    "lv.variances", "lv.covariances", "regressions",
)

_OPS = ("=~", "~~", "~*~", "==", "|", "~")  # order matters for splitting
_NAME = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*$")


@dataclass
class Modifier:
    """Per-term modifier: fixed value, label, start value, or NA (explicitly free)."""

    fixed: list | None = None   # one entry per group (float or None meaning NA/free)
    label: list | None = None   # one entry per group (str or None)
    start: list | None = None

    def merge(self, other: "Modifier") -> "Modifier":
        return Modifier(fixed=other.fixed if other.fixed is not None else self.fixed,
                        label=other.label if other.label is not None else self.label,
                        start=other.start if other.start is not None else self.start)


@dataclass
class Statement:
    """One parsed parameter statement of the syntax (before defaults)."""

    lhs: str
    op: str
    rhs: str
    mod: Modifier = field(default_factory=Modifier)


def _strip_comments(text: str) -> str:
    out = []
    for line in text.splitlines():
        cut = len(line)
        for ch in ("#", "!"):
            k = line.find(ch)
            if k >= 0:
                cut = min(cut, k)
        out.append(line[:cut])
    return "\n".join(out)


def _find_op(stmt: str) -> str | None:
    for op in ("=~", "~*~", "~~", "==", "|", "~", ":=", "<", ">"):
        if op in stmt:
            return op
    return None


def _split_top(s: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _parse_value(tok: str, stmt: str):
    """A modifier token → ('fixed', float|None) | ('label', str) | ('start', float)."""
    tok = tok.strip()
    if tok == "NA":
        return ("fixed", None)
    try:
        return ("fixed", float(tok))
    except ValueError:
        pass
    if _NAME.match(tok):
        return ("label", tok)
    raise ModelError(f"Cannot read the modifier {tok!r} in the statement {stmt.strip()!r}.")


def _parse_modifier(tok: str, stmt: str) -> Modifier:
    tok = tok.strip()
    m = re.match(r"^(c|start|equal|label)\s*\((.*)\)$", tok, flags=re.S)
    if m:
        kind, inner = m.group(1), m.group(2)
        vals = [v.strip().strip("'\"") for v in _split_top(inner, ",")]
        if kind == "start":
            try:
                return Modifier(start=[float(v) for v in vals])
            except ValueError:
                raise ModelError(f"start() needs numbers in the statement {stmt.strip()!r}.") from None
        if kind in ("equal", "label"):
            return Modifier(label=vals)
        parsed = [_parse_value(v, stmt) for v in vals]
        kinds = {k for k, _ in parsed}
        if kinds == {"fixed"}:
            return Modifier(fixed=[v for _, v in parsed])
        if kinds == {"label"}:
            return Modifier(label=[v for _, v in parsed])
        raise ModelError(f"c() mixes numbers and labels in the statement {stmt.strip()!r}; "
                         "write them as two modifiers, e.g. c(1, NA)*x + c(a, b)*x.")
    kind, val = _parse_value(tok, stmt)
    if kind == "fixed":
        return Modifier(fixed=[val])
    return Modifier(label=[val])


def _parse_term(term: str, stmt: str) -> tuple[str, Modifier]:
    pieces = _split_top(term, "*")
    name = pieces[-1].strip()
    mod = Modifier()
    for tok in pieces[:-1]:
        mod = mod.merge(_parse_modifier(tok, stmt))
    if not name:
        raise ModelError(f"A term is empty in the statement {stmt.strip()!r}.")
    return name, mod


def parse_syntax(model: str) -> tuple[list[Statement], list[tuple[str, str]]]:
    """Parse lavaan model syntax.

    Parameters
    ----------
    model : str
        lavaan-style syntax. Statements are separated by new lines or ``;``; a line
        without an operator continues the previous statement.

    Returns
    -------
    statements : list of Statement
        One per parameter written, in order (``op`` ``"~1"`` for intercepts/means).
    equalities : list of (str, str)
        The ``label == label`` constraints.

    Raises
    ------
    ModelError
        For unreadable syntax, unsupported operators (regressions ``~``, ``:=``,
        inequalities) or an empty model.

    Examples
    --------
    >>> st, eq = parse_syntax("f =~ x1 + a*x2 + NA*x3\\nx1 ~~ x2; x1 | t1 + t2")
    >>> [(s.lhs, s.op, s.rhs) for s in st]
    [('f', '=~', 'x1'), ('f', '=~', 'x2'), ('f', '=~', 'x3'), ('x1', '~~', 'x2'), ('x1', '|', 't1'), ('x1', '|', 't2')]
    """
    if not isinstance(model, str) or not model.strip():
        raise ModelError("model= must be a non-empty string of lavaan-style syntax.")
    text = _strip_comments(model)
    raw: list[str] = []
    for line in text.replace(";", "\n").splitlines():
        s = line.strip()
        if not s:
            continue
        if _find_op(s) is None or (raw and re.search(r"(\+|\*|=~|~~|~|\||,|\()\s*$", raw[-1])):
            if not raw:
                raise ModelError(f"The line {s!r} has no operator (=~, ~~, ~, |).")
            raw[-1] = raw[-1] + " " + s
        else:
            raw.append(s)
    statements: list[Statement] = []
    equalities: list[tuple[str, str]] = []
    for stmt in raw:
        op = _find_op(stmt)
        if op == ":=":
            continue           # defined parameters: see defined_parameters()
        if op in ("<", ">"):
            raise ModelError(f"The operator {op!r} (inequality constraints) is not supported: {stmt!r}.")
        lhs_s, rhs_s = stmt.split(op, 1)
        lhs_s, rhs_s = lhs_s.strip(), rhs_s.strip()
        if not lhs_s or not rhs_s:
            raise ModelError(f"The statement {stmt!r} needs something on both sides of {op!r}.")
        if op == "==":
            a, b = lhs_s, rhs_s
            if not (_NAME.match(a) and _NAME.match(b)):
                raise ModelError(f"Only equality of two labels (a == b) is supported, got {stmt!r}.")
            equalities.append((a, b))
            continue
        lhs_names = [x.strip() for x in _split_top(lhs_s, "+")]
        for ln in lhs_names:
            if not _NAME.match(ln):
                raise ModelError(f"{ln!r} is not a valid variable name in the statement {stmt!r}.")
        terms = [t for t in _split_top(rhs_s, "+")]
        if any(not t.strip() for t in terms):
            raise ModelError(f"The statement {stmt!r} has an empty term (a stray '+'?).")
        for ln in lhs_names:
            for t in terms:
                name, mod = _parse_term(t, stmt)
                if op == "~" and name in ("1", "1.0"):
                    statements.append(Statement(ln, "~1", "", mod))
                    continue
                if not _NAME.match(name):
                    raise ModelError(f"{name!r} is not a valid variable name in the statement {stmt!r}.")
                if op == "|" and not re.match(r"^t\d+$", name):
                    raise ModelError(f"Thresholds are written x | t1 + t2 + ...; got {name!r} in {stmt!r}.")
                statements.append(Statement(ln, op, name, mod))
    if not statements:
        raise ModelError("The model syntax holds no parameters.")
    return statements, equalities


def defined_parameters(model: str) -> list[tuple[str, str]]:
    """The defined parameters of a model: ``name := expression`` statements, in order.

    The expression is arithmetic (``+ - * / **``, parentheses, numbers, ``exp``, ``log``,
    ``sqrt``, ``abs``) of parameter labels and earlier defined names.

    Parameters
    ----------
    model : str
        lavaan-style syntax.

    Returns
    -------
    list of (str, str)
        ``(name, expression)`` pairs.

    Examples
    --------
    >>> defined_parameters("f ~ a*g; h ~ b*f; ab := a*b")
    [('ab', 'a*b')]
    """
    if not isinstance(model, str):
        return []
    out = []
    for line in _strip_comments(model).replace(";", "\n").splitlines():
        if ":=" not in line:
            continue
        lhs, rhs = (x.strip() for x in line.split(":=", 1))
        if not _NAME.match(lhs) or not rhs:
            raise ModelError(f"A defined parameter is written 'name := expression'; got {line.strip()!r}.")
        out.append((lhs, rhs))
    return out


def param_type(op: str, lhs: str, rhs: str, lv_names: Iterable[str]) -> str:
    """The group.equal type of a parameter (``"loadings"``, ``"intercepts"``, ...).

    Parameters
    ----------
    op, lhs, rhs : str
        The parameter (``"=~"``, ``"~~"``, ``"~1"``, ``"|"``, ``"~*~"``, ``"~"``).
    lv_names : iterable of str
        The latent variables of the model.

    Returns
    -------
    str
        One of ``GROUP_EQUAL_TYPES``, ``"scales"`` or ``"other"``.

    Examples
    --------
    >>> param_type("~~", "f", "f", ["f"])
    'lv.variances'
    """
    lv = set(lv_names)
    if op == "=~":
        return "loadings"
    if op == "|":
        return "thresholds"
    if op == "~1":
        return "means" if lhs in lv else "intercepts"
    if op == "~~":
        if lhs in lv:
            return "lv.variances" if lhs == rhs else "lv.covariances"
        return "residuals" if lhs == rhs else "residual.covariances"
    if op == "~*~":
        return "scales"
    if op == "~":
        return "regressions"
    return "other"


def _per_group(values: list | None, g: int, n_groups: int, what: str, row: str):
    if values is None:
        return None
    if len(values) == 1:
        return values[0]
    if len(values) != n_groups:
        raise ModelError(f"The {what} modifier of {row!r} has {len(values)} values but there are "
                         f"{n_groups} groups.")
    return values[g]


def _norm_partial(s: str) -> str:
    return re.sub(r"\s+", "", s)


def build_partable(
    model: str,
    *,
    observed: Sequence[str] | None = None,
    ordered: Mapping[str, int] | Sequence[str] | None = None,
    n_groups: int = 1,
    std_lv: bool = False,
    meanstructure: bool = False,
    group_equal: Sequence[str] = (),
    group_partial: Sequence[str] = (),
) -> pd.DataFrame:
    """Expand lavaan syntax into a full parameter table with ``lavaan::cfa()`` defaults.

    Parameters
    ----------
    model : str
        lavaan-style syntax (see :func:`parse_syntax`).
    observed : sequence of str, optional
        The columns of the data. When given, every observed variable of the model
        must be among them (else :class:`~cips_stats.ModelError`).
    ordered : mapping or sequence, optional
        Ordered (categorical) items; a mapping item → number of categories adds
        ``K-1`` thresholds ``x | t1 ...`` per item (a plain sequence assumes thresholds
        are written in the syntax).
    n_groups : int
        Number of groups.
    std_lv : bool
        Identify factors by fixing their variances to 1 (else the first loading is 1).
    meanstructure : bool
        Add intercepts (free) and latent means (fixed at 0).
    group_equal : sequence of str
        Parameter types held equal across groups: any of ``GROUP_EQUAL_TYPES``.
    group_partial : sequence of str
        Parameters freed from ``group_equal``, written ``"f=~x3"``, ``"x3~1"``, ``"x3|t1"``.

    Returns
    -------
    pandas.DataFrame
        The parameter table (columns id, lhs, op, rhs, user, group, free, ustart,
        label, plabel); see the module docstring.

    Notes
    -----
    Defaults as ``lavaan::cfa()`` 0.6 adds them (auto.fix.first, auto.fix.single,
    auto.var, auto.cov.lv.x, int.ov.free, int.lv.free=FALSE, auto.th, auto.delta).
    Multi-group identification as lavaan: with ``"intercepts"`` (or ``"thresholds"``)
    in ``group_equal`` the latent means are freed in groups 2+; with ``std_lv`` and
    ``"loadings"`` equal the latent variances are freed in groups 2+; with
    ``"thresholds"`` equal the scale factors (``~*~``) of ordered items are freed in
    groups 2+. A parameter held equal to a fixed group-1 parameter is fixed to the
    same value. Checked against ``lavaan::parTable()`` (validation/r/cfa.R).

    Examples
    --------
    >>> pt = build_partable("f =~ x1 + x2 + x3", n_groups=2, meanstructure=True,
    ...                     group_equal=("loadings",))
    >>> int(pt["free"].max())  # 2 loadings + 2 x (3 residuals, 1 variance, 3 intercepts)
    16
    """
    statements, equalities = parse_syntax(model)
    if isinstance(group_equal, str):
        group_equal = (group_equal,)
    if isinstance(group_partial, str):
        group_partial = (group_partial,)
    if isinstance(n_groups, bool) or not isinstance(n_groups, (int, np.integer)) or n_groups < 1:
        raise ModelError(f"n_groups= must be a positive integer, got {n_groups!r}.")
    bad = [t for t in group_equal if t not in GROUP_EQUAL_TYPES]
    if bad:
        raise ModelError(f"group_equal= has unknown types {bad}; use any of {list(GROUP_EQUAL_TYPES)}.")
    if isinstance(ordered, Mapping):
        ord_k = {str(k): int(v) for k, v in ordered.items()}
    else:
        ord_k = {str(k): 0 for k in (ordered or ())}

    lv_names, ov_names = _variable_names(statements, observed, ord_k)
    user, keys, th_user = _parameter_keys(statements, lv_names, ov_names, ord_k, meanstructure)
    # the table is built column by column in plain lists (a few hundred rows: pandas per-column
    # operations would cost more than the work) and becomes a DataFrame once, at the end
    pt = _group_rows(keys, user, lv_names, ord_k, n_groups, std_lv)
    _group_equal_rules(pt, group_equal, group_partial, n_groups, std_lv)
    _absorb_equalities(pt, equalities)
    _check_identification(pt, lv_names, n_groups, ord_k, th_user)
    return pd.DataFrame({
        "id": np.asarray(pt["id"], dtype=np.int64), "lhs": pt["lhs"], "op": pt["op"], "rhs": pt["rhs"],
        "user": np.asarray(pt["user"], dtype=np.int64), "group": np.asarray(pt["group"], dtype=np.int64),
        "free": np.asarray(pt["free"], dtype=np.int64), "ustart": np.asarray(pt["ustart"], dtype=float),
        "label": pd.Series(pt["label"], dtype=object), "plabel": pt["plabel"]})




def _variable_names(statements, observed, ord_k):
    """Latent and observed names in lavaan order, checked against the data."""
    # -- variable names, in lavaan order -------------------------------------------
    lv_names: list[str] = []
    for s in statements:
        if s.op == "=~" and s.lhs not in lv_names:
            lv_names.append(s.lhs)
    ov_names: list[str] = []

    def _add_ov(n):
        if n not in lv_names and n not in ov_names:
            ov_names.append(n)

    for s in statements:
        if s.op == "=~":
            _add_ov(s.rhs)
    for s in statements:
        if s.op in ("~~",):
            _add_ov(s.lhs)
            _add_ov(s.rhs)
        elif s.op in ("~1", "|", "~*~"):
            _add_ov(s.lhs)
    if not lv_names:
        raise ModelError("The model defines no latent variable (no '=~' statement).")
    for s in statements:
        if s.op == "=~" and s.rhs in lv_names:
            raise ModelError(f"Higher-order factors ({s.lhs} =~ {s.rhs}) are not supported by cfa().")
        if s.op == "~" and not (s.lhs in lv_names and s.rhs in lv_names):
            raise ModelError(f"Regressions are supported between latent variables only; {s.lhs} ~ {s.rhs} "
                             "involves an observed variable (define it as a single-indicator factor).")
        if s.op == "|" and s.lhs in lv_names:
            raise ModelError(f"Thresholds need an observed variable, got the latent {s.lhs!r}.")
    if observed is not None:
        obs = set(map(str, observed))
        missing = [v for v in ov_names if v not in obs]
        if missing:
            raise ModelError(f"The model uses variables that are not in the data: {missing}.")
    for v in ord_k:
        if v not in ov_names:
            raise ModelError(f"ordered= names {v!r}, which is not an observed variable of the model.")

    return lv_names, ov_names


def _parameter_keys(statements, lv_names, ov_names, ord_k, meanstructure):
    """User statements merged by (lhs, op, rhs) and the default parameters lavaan adds."""
    # -- user statements merged by (lhs, op, rhs) ----------------------------------
    user: dict[tuple[str, str, str], Modifier] = {}
    for s in statements:
        key = (s.lhs, s.op, s.rhs)
        if s.op == "~~" and (s.rhs, s.op, s.lhs) in user:
            key = (s.rhs, s.op, s.lhs)
        user[key] = user[key].merge(s.mod) if key in user else s.mod

    # thresholds: syntax ones, else K-1 per ordered item
    th_user = {k for k in user if k[1] == "|"}
    keys: list[tuple[tuple[str, str, str], int]] = [(k, 1) for k in user]
    defaults: list[tuple[str, str, str]] = []
    for v in ov_names:  # residual variances
        if (v, "~~", v) not in user:
            defaults.append((v, "~~", v))
    for f in lv_names:
        if (f, "~~", f) not in user:
            defaults.append((f, "~~", f))
    # factor covariances (lavaan's auto.cov.lv.x and auto.cov.y): among exogenous factors, and among
    # factors that are only outcomes; none between a predictor and its outcome's residual
    lv_y = {s.lhs for s in statements if s.op == "~"}
    lv_x = {s.rhs for s in statements if s.op == "~"}
    for i, f1 in enumerate(lv_names):
        for f2 in lv_names[i + 1:]:
            exo = f1 not in lv_y and f2 not in lv_y
            outcomes = f1 in lv_y - lv_x and f2 in lv_y - lv_x
            if (exo or outcomes) and (f1, "~~", f2) not in user and (f2, "~~", f1) not in user:
                defaults.append((f1, "~~", f2))
    if meanstructure or any(k[1] == "~1" for k in user):
        for v in ov_names:
            if (v, "~1", "") not in user:
                defaults.append((v, "~1", ""))
        for f in lv_names:
            if (f, "~1", "") not in user:
                defaults.append((f, "~1", ""))
    for v, k in ord_k.items():
        if not any(t[0] == v for t in th_user):
            if k < 2:
                raise ModelError(f"The ordered item {v!r} needs at least 2 categories (thresholds), got {k}.")
            for j in range(1, k):
                defaults.append((v, "|", f"t{j}"))
        if (v, "~*~", v) not in user:
            defaults.append((v, "~*~", v))
    keys += [(k, 0) for k in defaults]

    return user, keys, th_user


def _group_rows(keys, user, lv_names, ord_k, n_groups, std_lv):
    """One row per parameter and group, fixed or free by the modifiers and the defaults."""
    # first indicator per factor, indicators per factor
    first_ind = {}
    n_ind: dict[str, int] = {}
    for (lhs, op, rhs), _ in keys:
        if op == "=~":
            first_ind.setdefault(lhs, rhs)
            n_ind[lhs] = n_ind.get(lhs, 0) + 1
    single_ind = {first_ind[f] for f in lv_names if n_ind[f] == 1}

    # -- rows per group, collected by column ---------------------------------------------
    names = ("lhs", "op", "rhs", "user", "group", "free", "ustart", "label", "is_fixed_user", "explicit_free")
    cols: dict[str, list] = {k: [] for k in names}
    for g in range(n_groups):
        for (lhs, op, rhs), is_user in keys:
            mod = user.get((lhs, op, rhs), Modifier())
            tag = f"{lhs}{op}{rhs}"
            fixed = _per_group(mod.fixed, g, n_groups, "fixed-value", tag)
            label = _per_group(mod.label, g, n_groups, "label", tag)
            start = _per_group(mod.start, g, n_groups, "start", tag)
            explicit_free = mod.fixed is not None and fixed is None
            free, ustart = True, np.nan
            if fixed is not None:
                free, ustart = False, float(fixed)
            elif not explicit_free:
                # defaults
                if op == "=~" and not std_lv and rhs == first_ind.get(lhs):
                    free, ustart = False, 1.0
                elif op == "~~" and lhs == rhs and lhs in lv_names and std_lv:
                    free, ustart = False, 1.0
                elif op == "~~" and lhs == rhs and lhs in ord_k:
                    free, ustart = False, 1.0
                elif op == "~~" and lhs == rhs and lhs in single_ind and not is_user:
                    free, ustart = False, 0.0
                elif op == "~1" and lhs in lv_names:
                    free, ustart = False, 0.0
                elif op == "~1" and lhs in ord_k:
                    free, ustart = False, 0.0
                elif op == "~*~":
                    free, ustart = False, 1.0
            if start is not None and free:
                ustart = float(start)
            for k, v in zip(names, (lhs, op, rhs, is_user, g + 1, free, ustart, label or "", fixed is not None,
                                    explicit_free)):
                cols[k].append(v)
    n = len(cols["lhs"])
    cols["id"] = list(range(1, n + 1))
    cols["plabel"] = [f".p{i}." for i in cols["id"]]
    cols["ptype"] = [param_type(o, l, r, lv_names) for l, o, r in zip(cols["lhs"], cols["op"], cols["rhs"])]
    return cols


def _group_equal_rules(pt: dict, group_equal, group_partial, n_groups, std_lv) -> None:
    """Multi-group identification (means, variances, scales freed in groups 2+) and group.equal labels.

    ``pt`` holds the table's columns as lists and is changed in place.
    """
    if n_groups <= 1:
        return
    ge = set(group_equal)
    partial = {_norm_partial(p) for p in group_partial}
    c_lhs, c_op, c_rhs, c_g, c_type = pt["lhs"], pt["op"], pt["rhs"], pt["group"], pt["ptype"]
    c_label, c_plabel, c_free, c_ustart = pt["label"], pt["plabel"], pt["free"], pt["ustart"]
    c_fu, c_ef = pt["is_fixed_user"], pt["explicit_free"]
    # -- multi-group identification rules -----------------------------------------------
    means = "intercepts" in ge or "thresholds" in ge
    lv_var = std_lv and "loadings" in ge
    scales = "thresholds" in ge
    if means or lv_var or scales:
        for i in range(len(c_g)):
            if c_g[i] > 1 and not c_fu[i] and ((means and c_type[i] == "means")
                                                or (lv_var and c_type[i] == "lv.variances")
                                                or (scales and c_op[i] == "~*~")):
                c_free[i], c_ustart[i] = True, float("nan")
    # -- group.equal through labels
    ref = {(l, o, r): i for i, (l, o, r, gg) in enumerate(zip(c_lhs, c_op, c_rhs, c_g)) if gg == 1}
    for i in range(len(c_g)):
        if c_g[i] == 1 or c_type[i] not in ge:
            continue
        key = (c_lhs[i], c_op[i], c_rhs[i])
        name = _norm_partial(f"{key[0]}{key[1]}{key[2]}")
        if name in partial or c_label[i] != "" or c_fu[i] or c_ef[i]:
            continue
        j = ref.get(key)
        if j is None:
            continue
        if not c_free[j]:
            c_free[i] = False
            c_ustart[i] = c_ustart[j]
            continue
        if c_label[j] == "":
            c_label[j] = c_plabel[j]
        c_label[i] = c_label[j]
        c_free[i] = True


def _absorb_equalities(pt: dict, equalities) -> None:
    """Rows with one label (or tied by a == b) share one free index; a label tied to a fixed row fixes all."""
    # -- equality constraints (shared labels, a == b) → shared free index ----------------------
    parent = {}

    def find(a):
        while parent.setdefault(a, a) != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    labels = pt["label"]
    labels_in_table = set(labels) - {""}
    for a, b in equalities:
        for x in (a, b):
            if x not in labels_in_table:
                raise ModelError(f"The constraint {a} == {b} uses the label {x!r}, which labels no parameter.")
        parent[find(a)] = find(b)
    key_of = [find(lab) if lab else f"#row{i}" for i, lab in enumerate(labels)]
    # a label shared with a fixed row fixes all rows with that label
    fixed_keys = {}
    c_free, c_ustart = pt["free"], pt["ustart"]
    for k, fr, us in zip(key_of, c_free, c_ustart):
        if not fr and not k.startswith("#row"):
            fixed_keys.setdefault(k, us)
    index, free_col, ustart_col = {}, [], []
    for k, fr, us in zip(key_of, c_free, c_ustart):
        if k in fixed_keys:
            free_col.append(0)
            ustart_col.append(fixed_keys[k])
        elif fr:
            if k not in index:
                index[k] = len(index) + 1
            free_col.append(index[k])
            ustart_col.append(us)
        else:
            free_col.append(0)
            ustart_col.append(us)
    pt["free"] = free_col
    pt["ustart"] = ustart_col


def _check_identification(pt, lv_names, n_groups, ord_k, th_user):
    """Every factor needs a scale in every group; every ordered item thresholds."""
    # -- identification checks ----------------------------------------------------------------
    scale_ok: dict[tuple[int, str], bool] = {}
    for g, lhs, op, rhs, fr, us, lab in zip(pt["group"], pt["lhs"], pt["op"], pt["rhs"], pt["free"], pt["ustart"],
                                           pt["label"]):
        key = (g, lhs)
        if op == "=~" and ((fr == 0 and us != 0) or (g > 1 and lab != "")):
            scale_ok[key] = True
        elif op == "~~" and lhs == rhs and lhs in lv_names and fr == 0:
            scale_ok[key] = True
    for g in range(1, n_groups + 1):
        for f in lv_names:
            if not scale_ok.get((g, f), False):
                raise ModelError(
                    f"The factor {f!r} has no scale in group {g}: fix a loading (1*x) or its variance "
                    "(f ~~ 1*f), or use std_lv=True.")
    for v in ord_k:
        if ord_k[v] == 0 and not any(t[0] == v for t in th_user):
            raise ModelError(f"The ordered item {v!r} has no thresholds; pass ordered={{item: n_categories}}.")


def count_moments(p: int, meanstructure: bool, n_groups: int, n_thresholds: int = 0) -> int:
    """Number of sample moments: ``G * (p(p+1)/2 + p*meanstructure)`` (+ thresholds).

    Examples
    --------
    >>> count_moments(9, False, 1)
    45
    """
    return n_groups * (p * (p + 1) // 2 + (p if meanstructure else 0)) + n_thresholds

