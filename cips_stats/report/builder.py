"""Build the self-contained HTML report, its CSV tables and ``report.json``."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .. import output as _out
from ..errors import CipsError, Flag
from ..results import Provenance, Result, resolve_seed, to_jsonable
from . import _inference as _I   # noqa: F401  (registers the change, claims, KPI, review and appendix sections)
from . import _sections as S

__all__ = ["build", "compute", "export", "Report", "SECTIONS"]

#: Sections in report order.
SECTIONS = ("data", "reliability", "cfa", "invariance", "indicators", "gap", "drift", "change", "claims", "kpi",
            "review", "appendix")
#: Estimators of the CFA and invariance sections.
ESTIMATORS = ("ML", "MLR", "WLSMV")


@dataclass(frozen=True)
class Report(Result):
    """What :func:`build` wrote.

    Attributes
    ----------
    out : str
        Output folder.
    index : str
        Path of ``index.html``.
    sections : dict
        Section name → ``{"ok": bool, "error": str or None, "seconds": float}``.
    failures : dict
        Section name → error message, for every section that failed (fully or
        partly); empty when all built.
    files : tuple of str
        Every file written (relative to ``out``).
    """

    out: str = ""
    index: str = ""
    sections: dict = field(default_factory=dict)
    failures: dict = field(default_factory=dict)
    files: tuple = ()

    @property
    def ok(self) -> bool:
        """True when every section built."""
        return not self.failures

    def to_frame(self) -> pd.DataFrame:
        """One row per section: ok, error, seconds."""
        return pd.DataFrame([{"section": k, **v} for k, v in self.sections.items()])


def _options(seed, n_boot, anonymise, min_cell, cfa, invariance, invariance_levels, invariance_factors,
             estimator="ML") -> S.Options:
    seed = resolve_seed(seed)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ValueError(f"n_boot= must be an integer of at least 2; got {n_boot!r}.")
    from ..thresholds import DISCLOSURE_FLOOR

    if (isinstance(min_cell, bool) or not isinstance(min_cell, (int, np.integer))
            or min_cell < int(DISCLOSURE_FLOOR)):
        raise CipsError(f"min_cell= must be an integer of at least {int(DISCLOSURE_FLOOR)} (the disclosure floor); "
                        f"got {min_cell!r}.")
    if invariance not in ("factor", "model"):
        raise ValueError(f"invariance= must be 'factor' or 'model'; got {invariance!r}.")
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator= must be one of {', '.join(ESTIMATORS)}; got {estimator!r}.")
    return S.Options(seed=int(seed), n_boot=int(n_boot), min_cell=int(min_cell), anonymise=bool(anonymise),
                     cfa=bool(cfa), invariance=invariance, invariance_levels=tuple(invariance_levels),
                     invariance_factors=None if invariance_factors is None else tuple(invariance_factors),
                     estimator=estimator)


def _check_sections(sections: Sequence[str]) -> tuple[str, ...]:
    if isinstance(sections, str):
        sections = (sections,)
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise ValueError(f"sections= names unknown sections {unknown}; choose from {', '.join(SECTIONS)}.")
    return tuple(s for s in SECTIONS if s in set(sections))


def compute(section: str, data: Any, *, seed: int | None = None, n_boot: int = 1000, cfa: bool = True,
            invariance: str = "factor", invariance_levels: Sequence[str] = ("configural", "metric", "scalar"),
            invariance_factors: Sequence[str] | None = None, indicators: Any = None, estimator: str = "ML",
            inputs: Mapping[str, Any] | None = None, results: Mapping[str, Any] | None = None,
            n_jobs: int | None = None) -> Any:
    """Compute the raw result of one report section, exactly as :func:`build` would.

    Parameters
    ----------
    section : {"reliability", "cfa", "invariance", "indicators", "gap", "drift"}
        The section.
    data : SurveyData
        The survey.
    seed, n_boot, cfa, invariance, invariance_levels, invariance_factors, estimator, n_jobs
        As for :func:`build` (``n_jobs``: worker processes fitting the
        independent invariance ladders).
    indicators : Indicators, optional
        Already computed indicators (the gap reuses their replicates).
    inputs : mapping, optional
        User tables of the later sections, as for :func:`build`
        (``support``, ``targets``, ``change_options``).
    results : mapping, optional
        Raw results of sections already computed (change for claims, CFA and
        invariance for the instrument review).

    Returns
    -------
    object
        What ``build(..., results={section: ...})`` accepts: a DataFrame
        (reliability), ``{group: CFAResult}`` (cfa), a list of
        ``(comparison, factor, InvarianceResult)`` (invariance),
        ``Indicators``, ``Contrast`` (gap) or ``DriftResult`` (drift).

    Examples
    --------
    >>> import cips_stats as cs
    >>> sim = cs.simulate(seed=2, n_countries=2, n_repeat=1, n_officials=40, n_private=30)
    >>> rel = cs.report.compute("reliability", sim.data)
    >>> sorted(rel["group"].unique())
    ['officials', 'private']
    """
    if section not in S.COMPUTE:
        raise ValueError(f"section= must be one of {', '.join(S.COMPUTE)}; got {section!r}.")
    opts = _options(seed, n_boot, False, 10, cfa, invariance, invariance_levels, invariance_factors, estimator)
    ctx = S.Context(data=data, options=opts, inputs=dict(inputs or {}), n_jobs=_check_jobs(n_jobs))
    ctx.raw.update({k: v for k, v in (results or {}).items() if v is not None})
    if indicators is not None:
        ctx.raw["indicators"] = indicators
    return S.COMPUTE[section](ctx)


def export(section: str, result: Any, folder: str | Path, *, data: Any, min_cell: int = 10,
           anonymise: bool = False, seed: int | None = None, key: str | bytes | None = None) -> list[Path]:
    """Write the published (suppressed, optionally anonymised) CSV tables of one section's raw result.

    The tables are those :func:`build` writes for the section.

    Parameters
    ----------
    section : str
        Section name (see :data:`SECTIONS`).
    result : object
        The section's raw result (from :func:`compute`).
    folder : str or Path
        Output folder (created).
    data : SurveyData
        The survey the result came from.
    min_cell, anonymise, seed
        As for :func:`build`.

    Returns
    -------
    list of Path
        The files written, ``<section>_<table>.csv``.

    Examples
    --------
    >>> import tempfile, cips_stats as cs
    >>> sim = cs.simulate(seed=2, n_countries=2, n_repeat=1, n_officials=40, n_private=30)
    >>> rel = cs.report.compute("reliability", sim.data)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     files = cs.report.export("reliability", rel, tmp, data=sim.data)
    ...     names = [f.name for f in files]
    >>> "reliability_cells.csv" in names
    True
    """
    opts = _options(seed, 2, anonymise, min_cell, True, "factor", ("configural",), None)
    ctx = S.Context(data=data, options=opts, gate=_gate(data, opts, key))
    sec = S.Section(section, S.SECTION_TITLES.get(section, section), draw=False)
    _present(ctx, sec, result)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return _write_tables(sec, folder)


def _gate(data: Any, opts: S.Options, key: Any = None) -> Any:
    """The publication gate of a build: the only place outputs are suppressed and anonymised."""
    from .. import disclosure

    return disclosure.Gate.for_survey(data, min_n=opts.min_cell, key=key, anonymise=opts.anonymise)


def _mapping(data: Any, opts: S.Options) -> dict:
    """Country -> code of the build's gate (kept for callers; the gate holds it)."""
    return {}


def _check_jobs(n_jobs: Any) -> int | None:
    if n_jobs is None:
        return None
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
        raise CipsError(f"n_jobs= must be a positive integer or None (the CPU cores); got {n_jobs!r}.")
    return int(n_jobs)


def _submitter(n_jobs: int | None) -> Any:
    """``submit(kind, args, kwargs) -> Future``: figures drawn in worker processes while the build goes on
    (the future gives the PNG pages and the warnings raised while drawing)."""
    from .. import plotting

    def submit(kind: str, args: tuple, kwargs: dict) -> Any:
        return plotting._submit(plotting._render_caught, (kind, tuple(args), dict(kwargs), 90), n_jobs)

    return submit


def _background(n_jobs: int | None, func: Any, *args: Any) -> Any:
    """``func(*args)`` in a worker process (the figures' pool), or here when ``n_jobs`` is 1; a future."""
    from .. import plotting

    return plotting._submit(func, args, n_jobs)


def _collect(sec: S.Section) -> None:
    """The section's figures, drawn in the workers; one that failed makes the section fail, with its reason."""
    from .. import plotting

    pending = list(sec.pending)
    try:
        for category, message in sec.collect():      # warnings raised while drawing, as in the section
            sec.flags.append(Flag(f"python_warning:{category.__name__}", message, "warning", {}))
    except Exception as exc:
        broken = type(exc).__name__ in ("BrokenProcessPool", "TerminatedWorkerError", "ShutdownExecutorError")
        if broken:   # the workers died (e.g. killed for memory): draw here instead
            sec.figures = [f for f in sec.figures if not any(f[0].startswith(c) for c, _f, _j in pending)]
            try:
                for caption, _fut, (kind, args, kwargs) in pending:
                    pngs, caught = plotting._render_caught(kind, tuple(args), dict(kwargs), 90)
                    sec._add(caption, pngs)
                    sec.flags += [Flag(f"python_warning:{c.__name__}", m, "warning", {}) for c, m in caught]
                return
            except Exception as again:
                exc = again
        sec.ok = False
        msg = f"A figure could not be drawn: {type(exc).__name__}: {exc}"
        sec.error = f"{sec.error}; {msg}" if sec.error else msg


def _present(ctx: S.Context, sec: S.Section, raw: Any) -> None:
    if sec.name == "data":
        S.present_data(ctx, sec)
    else:
        S.PRESENT[sec.name](ctx, sec, raw)


def _safe_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula get a leading apostrophe (OWASP CSV injection)."""
    return _out.neutralise_frame(frame)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    """CSV in UTF-8 with a byte-order mark, formula-safe text, never through a link (``output.write_csv``)."""
    _out.write_csv(path, frame)


def _write_xlsx(tables: Sequence[tuple[str, pd.DataFrame]], path: Path) -> None:
    """One sheet per table, text typed as text (never a formula), never through a link (``output.write_xlsx``)."""
    _out.write_xlsx(path, list(tables))


def _write_tables(sec: S.Section, folder: Path) -> list[Path]:
    paths = []
    for key, _caption, frame, _collapsed, _display in sec.tables:
        p = folder / f"{sec.name}_{key}.csv"
        _write_csv(frame, p)
        paths.append(p)
    return paths


def build(data: Any, out: str | Path = "report/", *, seed: int | None = None, n_boot: int = 1000, anonymise: bool = False,
          key: str | bytes | None = None, overwrite: bool = False, min_cell: int = 10, sections: Sequence[str] = SECTIONS, truth: Mapping[str, pd.DataFrame] | None = None,
          cfa: bool = True, invariance: str = "factor",
          invariance_levels: Sequence[str] = ("configural", "metric", "scalar"),
          invariance_factors: Sequence[str] | None = None, results: Mapping[str, Any] | None = None,
          title: str | None = None, estimator: str = "ML", support: pd.DataFrame | None = None,
          targets: pd.DataFrame | None = None, inputs: Mapping[str, Any] | None = None,
          n_jobs: int | None = None) -> Report:
    """Build the HTML report of a survey, with the CSV tables and ``report.json`` behind it.

    Parameters
    ----------
    data : SurveyData
        The survey (``cs.load(...)`` or ``cs.simulate(...).data``).
    out : str or Path
        Output folder (created): ``index.html`` (self-contained: inline CSS,
        figures as embedded PNG), ``tables/<section>_<table>.csv`` and
        ``report.json``.
    seed : int or None
        Seed of the bootstrap (never of the anonymous codes: see ``key``);
        ``None`` (the default) draws one, recorded in ``report.json``.
    n_boot : int
        Bootstrap replicates of the indicators (default 1000).
    anonymise : bool
        Replace country names by codes everywhere (tables, figures, flags,
        JSON), rows ordered by code.  The codes come from ``key``, never from
        ``seed``; neither the key nor the mapping is written.
    key : str or bytes, optional
        Anonymisation key (:func:`cips_stats.disclosure.new_key`); the same
        key gives the same codes across iterations of a survey programme.
        ``None`` with ``anonymise=True`` uses a random key that is not kept.
    overwrite : bool
        Write into a non-empty folder that cips-stats did not create (see
        :class:`cips_stats.output.OutputFolder`); a folder cips-stats wrote
        before is always cleared of its previous outputs first.
    min_cell : int
        Disclosure minimum (default 10, never below 5): cells with fewer
        respondents, and shares of categories with fewer respondents, are
        blanked in every output, with complementary suppression so that no
        published total gives them back.
    sections : sequence of str
        Sections to include, from :data:`SECTIONS`.
    truth : mapping, optional
        Known truth of a synthetic survey (``cs.simulate(...).truth``): the
        indicators section then reports the coverage of its intervals.
    cfa : bool
        Fit the instrument's CFA per respondent group (the slowest default
        step after invariance; False leaves the section out of the fits).
    invariance : {"factor", "model"}
        ``"factor"`` (default, fast): one-factor invariance ladder per key
        factor; ``"model"``: the instrument's full correlated-factor model
        (minutes at CIPS scale).
    invariance_levels : sequence of str
        Levels tested (default configural, metric, scalar).
    invariance_factors : sequence of str, optional
        Restrict the per-factor invariance to these key factors.
    results : mapping, optional
        Already computed raw results by section (from :func:`compute`), used
        instead of computing them again; an exception in place of a result
        is shown in its section as the reason it failed.
    title : str, optional
        Title of the report (default: the instrument's description line or
        name, e.g. "cips-default statistical report").
    estimator : {"ML", "MLR", "WLSMV"}
        Estimator of the CFA and invariance sections (default ML; WLSMV
        treats the items as ordinal).
    support : pandas.DataFrame, optional
        Support table of the claim (``country, factor, supported``): the
        change section then fits the hierarchical model and the claims
        section audits the claim.
    targets : pandas.DataFrame, optional
        KPI targets (``factor, group, target``): the KPI section.
    inputs : mapping, optional
        More inputs of the later sections: ``change_options`` (keyword
        arguments of ``cs.change.fit``), ``claims_options`` (of
        ``cs.claims.audit``), ``sources`` (input files named in the
        appendix), ``steps`` (analysis step times for the appendix).
    n_jobs : int, optional
        Worker processes that draw the figures (joblib's reusable loky
        pool) and fit independent invariance ladders while the report goes
        on; default :func:`cips_stats.plotting.default_jobs` (the cores, or
        1 on fewer than 4); 1 does everything in this process.  The output
        is the same either way.

    Returns
    -------
    Report
        ``.failures`` names every section that failed (shown as an error box;
        the rest still builds), ``.files``, ``.sections`` with timings.

    Notes
    -----
    Every table, message, flag and JSON value that leaves the package passes
    through the publication gate :class:`cips_stats.disclosure.Gate`
    (primary and complementary suppression, redaction, anonymisation); files
    are written by :mod:`cips_stats.output` (formula-safe CSV/XLSX, a
    manifest, no symbolic link followed).  Figures are
    drawn from the published tables, so a suppressed cell is never drawn.
    Serialised results in ``report.json`` carry the published tables; raw
    per-cell arrays (estimates, counts, replicates) are left out and listed
    under ``omitted``.  See ``methodology/disclosure.md``.

    Examples
    --------
    >>> import tempfile, cips_stats as cs
    >>> sim = cs.simulate(seed=2, n_countries=2, n_repeat=1, n_officials=40, n_private=30)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     rep = cs.report.build(sim.data, tmp, n_boot=50, sections=("data", "indicators"))
    ...     rep.ok, rep.files[0]
    (True, 'index.html')
    """
    t_start = time.perf_counter()
    sections = _check_sections(sections)
    opts = _options(seed, n_boot, anonymise, min_cell, cfa, invariance, invariance_levels, invariance_factors,
                    estimator)
    if not (hasattr(data, "frame") and hasattr(data, "instrument")):
        raise TypeError(f"data= must be a SurveyData (cs.load or cs.simulate(...).data); got {type(data).__name__}.")
    if title is None:
        title = f"{getattr(data.instrument, 'name', '') or 'Survey'} statistical report"
    folder = _out.OutputFolder(out, overwrite=overwrite)   # refuses foreign folders, clears our old outputs
    out = folder.root
    try:
        (out / "tables").mkdir(exist_ok=True)
    except OSError as exc:
        raise _out.OutputError(f"Cannot create {str(out / 'tables')!r}: {exc.strerror or exc}.") from None
    extra = dict(inputs or {})
    if support is not None:
        extra["support"] = support
    if targets is not None:
        extra["targets"] = targets
    ctx = S.Context(data=data, options=opts, truth=truth, gate=_gate(data, opts, key), inputs=extra,
                    n_jobs=_check_jobs(n_jobs))
    submit = _submitter(ctx.n_jobs)
    given = dict(results or {})
    done: list[S.Section] = []
    for name in sections:
        if name == "cfa" and not opts.cfa:
            continue
        sec = S.Section(name, S.gap_title(ctx) if name == "gap" else S.SECTION_TITLES[name], submit=submit)
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                raw = None
                if name != "data":
                    raw = given.get(name)
                    if isinstance(raw, BaseException):   # computed before and failed: shown with its reason
                        ctx.raw[name] = raw
                        raise raw
                    if raw is None:
                        raw = S.COMPUTE[name](ctx)
                    ctx.raw[name] = raw
                _present(ctx, sec, raw)
            except Exception as exc:  # a failing section becomes an error box; the others build
                sec.ok = False
                sec.error = str(exc) if isinstance(exc, S.SectionIncomplete) else f"{type(exc).__name__}: {exc}"
                if not isinstance(exc, S.SectionIncomplete):
                    sec.tables, sec.figures, sec.paragraphs, sec.pending = [], [], [], []
                    sec.result = {"error": sec.error, "traceback": traceback.format_exc(limit=8)}
        for w in caught:
            sec.flags.append(Flag(f"python_warning:{w.category.__name__}", str(w.message), "warning", {}))
        sec.seconds = time.perf_counter() - t0
        done.append(sec)
    rep = _write(ctx, done, out, title, t_start)
    folder.record(rep.files)                         # the manifest: what the next build into `out` clears
    return rep


# ============================================================================================= output
def _warnings_table(ctx: S.Context, secs: Sequence[S.Section]) -> pd.DataFrame:
    rows = []
    for sec in secs:
        raw = ctx.raw.get(sec.name)
        res_flags = []
        if isinstance(raw, Result) and sec.name != "drift":   # drift flags were vetted in the section
            res_flags = list(raw.flags)
        gate = ctx._gate()
        for fl in gate.flags([*res_flags, *[f if not f.code.startswith("python_warning")
                                            else Flag(f.code, gate.message(f.message), f.severity, f.where)
                                            for f in sec.flags]]):
            where = fl.where or {}
            cells = where.get("cells") if isinstance(where, dict) else None
            loc = (f"{len(cells)} cells" if isinstance(cells, list)
                   else ", ".join(f"{k}={v}" for k, v in where.items() if not isinstance(v, (list, dict)))
                   if isinstance(where, dict) else str(where))
            rows.append({"section": sec.name, "severity": fl.severity, "code": fl.code,
                         "message": ctx.anon_text(fl.message), "where": ctx.anon_text(loc)})
        if not sec.ok:
            rows.append({"section": sec.name, "severity": "error", "code": "section_failed",
                         "message": ctx._gate().message(sec.error or ""), "where": ""})
    order = {"error": 0, "warning": 1, "caution": 2, "info": 3}
    t = pd.DataFrame(rows, columns=["section", "severity", "code", "message", "where"])
    if len(t):
        t = t.iloc[np.argsort([order.get(s, 4) for s in t["severity"]], kind="stable")].reset_index(drop=True)
    return t


def _fmt_cell(v: Any) -> str:
    if v is None or v is pd.NA:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return ""
        if float(v).is_integer() and abs(v) < 1e9:
            return str(int(v))
        return f"{v:.3f}" if abs(v) >= 0.001 or v == 0 else f"{v:.2e}"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    try:
        if pd.isna(v):
            return ""
    except (TypeError, ValueError):
        pass
    return str(v)


def _html_cells(col: pd.Series) -> list[str]:
    """A column's cells as escaped HTML text, formatted as :func:`_fmt_cell` formats them, one pass per column."""
    kind = col.dtype.kind if isinstance(col.dtype, np.dtype) else "O"
    if kind == "f":
        a = col.to_numpy()
        out = np.full(len(a), "", dtype=object)
        fin = np.isfinite(a)
        whole = fin & (a == np.trunc(np.where(fin, a, 0.0))) & (np.abs(np.where(fin, a, 0.0)) < 1e9)
        out[whole] = [str(int(v)) for v in a[whole].tolist()]
        rest = fin & ~whole
        fixed = rest & ((np.abs(np.where(fin, a, 0.0)) >= 0.001) | (a == 0))
        out[fixed] = [f"{v:.3f}" for v in a[fixed].tolist()]
        sci = rest & ~fixed
        out[sci] = [f"{v:.2e}" for v in a[sci].tolist()]
        return out.tolist()
    if kind in "iu":
        return [str(v) for v in col.to_numpy().tolist()]
    if kind == "b":
        return ["yes" if v else "no" for v in col.to_numpy().tolist()]
    return [html.escape(_fmt_cell(v)) for v in col.tolist()]


def _html_table(frame: pd.DataFrame, key: str) -> str:
    cols = [str(c) for c in frame.columns]
    parts = [f"<table class='t' data-table='{html.escape(key)}'><thead><tr>"]
    parts += [f"<th>{html.escape(c)}</th>" for c in cols]
    parts.append("</tr></thead><tbody>")
    sup = frame["suppressed"].to_numpy(dtype=bool) if "suppressed" in frame.columns and frame[
        "suppressed"].dtype == bool else np.zeros(len(frame), dtype=bool)
    cells = [_html_cells(frame.iloc[:, j]) for j in range(frame.shape[1])]
    rows = zip(*cells) if cells else ((),) * len(frame)
    for s, row in zip(sup.tolist(), rows):
        parts.append(("<tr class='sup'>" if s else "<tr>") + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def _write(ctx: S.Context, secs: list[S.Section], out: Path, title: str, t_start: float) -> Report:
    from .. import __version__

    gate = ctx._gate()
    files: list[str] = []
    sec_json: dict[str, Any] = {}
    views = []
    for sec in secs:
        _collect(sec)
    for sec in secs:
        paths = _write_tables(sec, out / "tables")
        files += [str(p.relative_to(out)) for p in paths]
        views.append({
            "name": sec.name, "title": sec.title, "ok": sec.ok, "error": gate.message(sec.error or ""),
            "note": gate.text(sec.note), "paragraphs": [gate.text(p) for p in sec.paragraphs],
            "headline": gate.text(sec.headline), "seconds": sec.seconds,
            "tables": [{"caption": cap, "collapsed": col, "rows": len(fr), "file": f"tables/{sec.name}_{key}.csv",
                        "html": _html_table(disp if disp is not None else fr, f"{sec.name}_{key}")}
                       for key, cap, fr, col, disp in sec.tables],
            "figures": [{"caption": gate.text(cap), "b64": base64.b64encode(png).decode("ascii")}
                        for cap, png in sec.figures],
        })
        sec_json[sec.name] = {"ok": sec.ok, "error": gate.message(sec.error), "note": sec.note,
                              "headline": sec.headline,
                              "seconds": sec.seconds,
                              "tables": [f"tables/{sec.name}_{k}.csv" for k, *_ in sec.tables],
                              "flags": [f.to_dict() for f in gate.flags(sec.flags)], "result": sec.result}
    warn = _warnings_table(ctx, secs)
    warn_path = out / "tables" / "warnings.csv"
    _write_csv(warn, warn_path)
    files.append(str(warn_path.relative_to(out)))
    # the workbook is written in a worker process while this one renders the HTML and the JSON
    xlsx = _background(ctx.n_jobs, _write_xlsx,
                       [(f"{sec.name}_{key}", fr) for sec in secs for key, _c, fr, _col, _d in sec.tables]
                       + [("warnings", warn)], out / "tables.xlsx")
    files.append("tables.xlsx")
    failures = {s.name: gate.message(s.error) for s in secs if not s.ok}
    prov = Provenance.build("report", data=ctx.data, seed=ctx.options.seed, options=ctx.options.to_dict())
    data = ctx.data
    header = {"respondents": len(data.frame) if gate.total_published("total") else "(withheld)",
              "countries": int(data.frame["country"].nunique()),
              "iterations": ", ".join(map(str, data.iterations)), "groups": ", ".join(data.groups),
              "instrument": getattr(data.instrument, "name", ""), "data fingerprint": data.fingerprint,
              "instrument hash": prov.instrument_hash, "package version": __version__, "seed": ctx.options.seed,
              "bootstrap replicates": ctx.options.n_boot, "minimum cell size": ctx.options.min_cell,
              "countries anonymised": "yes" if ctx.mapping else "no",
              "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    from ._filters import environment

    env = environment()
    text = env.get_template("report.html.j2").render(
        title=title, header=header, sections=views, failures=failures, methods=S.METHODS,
        warnings=warn.to_dict("records"), warnings_html=_html_table(warn, "warnings"), n_warnings=len(warn),
        css=_css())
    _out.write_text(out / "index.html", text)
    files.insert(0, "index.html")
    files.append("report.json")
    status = {s.name: {"ok": s.ok, "error": failures.get(s.name), "seconds": s.seconds} for s in secs}
    doc = {"kind": "CipsReport", "title": title, "package_version": __version__,
           "provenance": prov.to_dict(), "options": ctx.options.to_dict(),
           "instrument_hash": prov.instrument_hash, "data_fingerprint": data.fingerprint,
           "failures": failures, "sections": sec_json, "warnings": to_jsonable(warn),
           "files": files, "seconds": time.perf_counter() - t_start}
    _write_report_json(out / "report.json", doc, gate)
    xlsx.result()                                    # the workbook's errors surface here
    return Report(out=str(out), index=str(out / "index.html"), sections=status, failures=failures,
                  files=tuple(files), provenance=prov,
                  flags=tuple(Flag("section_failed", f"Section {k} failed: {v}", "error", {"section": k})
                              for k, v in failures.items()))


def _write_report_json(path: Path, doc: dict, gate: Any) -> None:
    """``report.json`` through the gate (names coded, flags about suppressed cells redacted), converted once.

    The sections' results are JSON-ready already (their tables converted column
    by column), so the document is gated and serialised as it is.  ``json.dumps``
    without a ``default`` accepts only dicts, lists, tuples, strings, numbers,
    booleans and None -- exactly what ``Gate.obj`` walks -- so a document it
    accepts had every string through the gate.  Anything else (a numpy value, a
    non-finite number, an object) falls back to the full conversion
    (``results.to_jsonable``) before the gate.
    """
    try:
        text = json.dumps(gate.obj(doc), indent=1, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        _out.write_json(path, gate.obj(to_jsonable(doc)))
        return
    _out.write_text(path, text)


def _css() -> str:
    from importlib.resources import files

    return (files("cips_stats") / "report" / "templates" / "report.css").read_text(encoding="utf-8")
