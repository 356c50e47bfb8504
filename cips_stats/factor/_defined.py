"""Defined parameters (lavaan's ``:=``): values, delta-method standard errors, standardised values.

A defined parameter is an arithmetic expression of parameter labels (and of earlier
defined names), e.g. an indirect effect ``ab := a*b``.  Its estimate is the expression
at the estimates; its standard error is the delta method's
``sqrt(g' V g)`` with ``g`` the gradient of the expression in the free parameters
(central differences) and ``V`` their covariance, as ``lavaan`` (``se="standard"`` or
robust: whatever ``V`` is).  The standardised value evaluates the expression on the
standardised parameters (``lavaan::standardizedSolution``).

Examples
--------
>>> from cips_stats.factor._defined import evaluate
>>> evaluate("a*b + 2", {"a": 0.5, "b": 3.0})
3.5
"""

from __future__ import annotations

import ast
import math
import re
from typing import Callable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ModelError
from .syntax import defined_parameters

__all__ = ["evaluate", "defined_rows"]

_FUNCS: dict[str, Callable[[float], float]] = {"exp": math.exp, "log": math.log, "sqrt": math.sqrt, "abs": abs}
_BIN = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
        ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a ** b}


def evaluate(expression: str, values: Mapping[str, float]) -> float:
    """Value of an arithmetic ``expression`` of names in ``values`` (no other code is run)."""
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except SyntaxError:
        raise ModelError(f"Cannot read the defined parameter expression {expression!r}.") from None

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in values:
                raise ModelError(f"The defined parameter {expression!r} uses {node.id!r}, which is no label.")
            return float(values[node.id])
        if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            return _BIN[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return -ev(node.operand) if isinstance(node.op, ast.USub) else ev(node.operand)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS \
                and len(node.args) == 1:
            return float(_FUNCS[node.func.id](ev(node.args[0])))
        raise ModelError(f"The defined parameter {expression!r} holds something other than arithmetic of labels.")

    return ev(tree)


def _label_values(params: pd.DataFrame, column: str) -> dict[str, float]:
    lab = params[params["label"].astype(str) != ""]
    return dict(zip(lab["label"].astype(str), lab[column].astype(float)))


def defined_rows(model: str, params: pd.DataFrame, theta: np.ndarray, vcov: np.ndarray | None,
                 est_of: Callable[[np.ndarray], np.ndarray], ci: float) -> pd.DataFrame:
    """Rows (``op == ":="``, ``group`` 0) of the defined parameters of ``model``; empty when none.

    ``est_of(theta)`` gives the estimate of every table row, so that the expression is a
    function of the free parameters.
    """
    defs = defined_parameters(model)
    if not defs:
        return params.iloc[0:0]
    labels = params["label"].astype(str).to_numpy()

    def values_at(th: np.ndarray, base: dict[str, float] | None = None) -> dict[str, float]:
        est = est_of(th)
        vals = dict(base) if base is not None else {}
        for lab, v in zip(labels, est):
            if lab and lab not in vals:
                vals[lab] = float(v)
        return vals

    def all_defined(vals: dict[str, float]) -> list[float]:
        out = []
        for name, expr in defs:
            vals[name] = evaluate(expr, vals)
            out.append(vals[name])
        return out

    est = np.array(all_defined(values_at(theta)))
    grad = np.zeros((len(defs), len(theta)))
    for k in range(len(theta)):
        h = 1e-6 * max(1.0, abs(theta[k]))
        up, dn = theta.copy(), theta.copy()
        up[k] += h
        dn[k] -= h
        grad[:, k] = (np.array(all_defined(values_at(up))) - np.array(all_defined(values_at(dn)))) / (2 * h)
    if vcov is not None and np.isfinite(vcov).all():
        se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", grad, vcov, grad), 0.0))
    else:
        se = np.full(len(defs), np.nan)
    std_vals = _label_values(params, "std_all")
    std = np.array(all_defined(dict(std_vals)))
    std_lv_vals = _label_values(params, "std_lv")
    std_lv = np.array(all_defined(dict(std_lv_vals)))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = est / se
    q = stats.norm.ppf(0.5 + ci / 2)
    rows = pd.DataFrame({"lhs": [n for n, _ in defs], "op": ":=", "rhs": [re.sub(r"\s+", "", e) for _, e in defs],
                         "group": 0,
                         "label": [n for n, _ in defs], "free": 0, "est": est, "se": se, "z": z,
                         "pvalue": 2 * stats.norm.sf(np.abs(z)), "ci_low": est - q * se, "ci_high": est + q * se,
                         "std_lv": std_lv, "std_all": std})
    return rows[[c for c in params.columns if c in rows.columns]]
