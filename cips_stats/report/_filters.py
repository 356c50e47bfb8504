"""Jinja environment of the HTML report and its filters (wording only; no statistics).

:func:`environment` is the one place the report's templates are loaded:
autoescaping on for every template, and the filters below registered.

``flag_sentence`` turns a flag — a :class:`cips_stats.errors.Flag`, its
``to_dict()``, or a row of the report's warnings table (``section``,
``severity``, ``code``, ``message``, ``where``) — into one plain sentence,
so that a reader never sees a Python dictionary.

Examples
--------
>>> from cips_stats.report._filters import flag_sentence
>>> flag_sentence({"code": "small_cell", "message": "fewer than 30 respondents", "severity": "caution",
...                "where": {"country": "A", "iteration": 2}})
'Caution: fewer than 30 respondents (country A, iteration 2).'
>>> flag_sentence({"section": "indicators", "severity": "warning", "code": "low_alpha",
...                "message": "Alpha is below .70.", "where": "12 cells"})
'Warning in indicators: Alpha is below .70 (12 cells).'
"""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["environment", "flag_sentence", "severity_class"]

_SEVERITY = {"error": "Error", "warning": "Warning", "caution": "Caution", "info": "Note"}


def _as_dict(flag: Any) -> dict:
    if isinstance(flag, Mapping):
        return dict(flag)
    if hasattr(flag, "to_dict"):
        return dict(flag.to_dict())
    return {"message": str(flag)}


def _blank(v: Any) -> bool:
    if v is None:
        return True
    try:
        return v != v or (isinstance(v, str) and not v.strip())   # NaN or empty
    except (TypeError, ValueError):
        return False


def _where_text(where: Any) -> str:
    """A place as words: ``{"country": "A", "cells": [...]}`` -> ``"country A, 3 cells"``."""
    if _blank(where):
        return ""
    if not isinstance(where, Mapping):
        return str(where).strip()
    parts = []
    for k, v in where.items():
        if isinstance(v, (list, tuple, set)):
            n = len(v)
            noun = str(k) if n != 1 or not str(k).endswith("s") else str(k)[:-1]
            parts.append(f"{n} {noun}")
        elif isinstance(v, Mapping):
            parts.append(f"{k}: " + ", ".join(f"{a} {b}" for a, b in v.items()))
        elif not _blank(v):
            parts.append(f"{str(k).replace('_', ' ')} {v}")
    return ", ".join(parts)


def _sentence(text: str) -> str:
    text = " ".join(str(text).split())
    if not text:
        return ""
    return text if text[-1] in ".!?" else text + "."


def flag_sentence(flag: Any) -> str:
    """One readable sentence for a flag, a flag dictionary or a warnings-table row.

    Parameters
    ----------
    flag : Flag or mapping
        ``severity``, ``message``, optional ``where`` (a mapping or text),
        optional ``section`` and ``code`` (the code is shown only when there is
        no message).

    Returns
    -------
    str
        ``"<Severity>[ in <section>]: <message>. (<where>)"`` — plain text
        (the template escapes it).

    Examples
    --------
    >>> from cips_stats.errors import Flag
    >>> flag_sentence(Flag("heywood", "a negative residual variance", "error", {"group": "g1"}))
    'Error: a negative residual variance (group g1).'
    """
    d = _as_dict(flag)
    sev = _SEVERITY.get(str(d.get("severity", "warning")).lower(), str(d.get("severity", "Note")).capitalize())
    msg = d.get("message")
    if _blank(msg):
        msg = str(d.get("code", "")).replace("_", " ")
    msg = " ".join(str(msg).split())
    where = _where_text(d.get("where"))
    section = d.get("section")
    head = f"{sev} in {section}" if not _blank(section) else sev
    if where:
        return f"{head}: {msg.rstrip('.')} ({where})."
    return f"{head}: {_sentence(msg)}"


def severity_class(flag: Any) -> str:
    """CSS class of a flag's severity (``sev-error``, ``sev-warning``, ``sev-caution``, ``sev-info``).

    Examples
    --------
    >>> severity_class({"severity": "ERROR"})
    'sev-error'
    """
    sev = str(_as_dict(flag).get("severity", "info")).lower()
    return f"sev-{sev if sev in _SEVERITY else 'info'}"


def environment() -> Any:
    """The report's Jinja environment: package templates, autoescaping, the filters above.

    Returns
    -------
    jinja2.Environment

    Examples
    --------
    >>> env = environment()
    >>> env.from_string("{{ f | flag_sentence }}").render(f={"severity": "info", "message": "<b>x</b>"})
    'Note: &lt;b&gt;x&lt;/b&gt;.'
    """
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("cips_stats", "report/templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"], default_for_string=True))
    env.filters["flag_sentence"] = flag_sentence
    env.filters["severity_class"] = severity_class
    return env
