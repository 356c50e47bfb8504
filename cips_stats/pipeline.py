"""The whole analysis of a survey in one call: load → weight → reliability → CFA → invariance → indicators →
change → claims → KPI → instrument review → report (``cips-stats analyze``).

Each step is timed; a step that fails is recorded with its reason and the
report shows it in its section, while the other steps go on.  Only a file
that cannot be loaded stops the analysis (a :class:`~cips_stats.errors.DataError`).

The output folder holds ``report/`` (``index.html``, ``tables/*.csv``,
``tables.xlsx``, ``report.json``: everything through the disclosure gate),
``results.json`` (the provenance needed to re-run the analysis: input files
with their SHA-256, options, seed, package version) and ``summary.json`` (the
steps with their times).  :func:`reproduce` re-runs an analysis from its
``results.json`` and compares every published number.

Examples
--------
>>> import tempfile, pathlib, cips_stats as cs
>>> from cips_stats import pipeline
>>> sim = cs.simulate(seed=2, n_countries=2, n_repeat=1, n_officials=40, n_private=30)
>>> with tempfile.TemporaryDirectory() as tmp:
...     a = pipeline.analyze(sim.data, out=pathlib.Path(tmp, "a"), n_boot=20, seed=1, steps=("indicators", "gap"))
...     [s["name"] for s in a.steps]
['load', 'indicators', 'gap', 'report']
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from .errors import CipsError, DataError, Problem
from .results import Provenance, Result, resolve_seed, to_jsonable

__all__ = ["analyze", "reproduce", "Analysis", "Reproduction", "ANALYSIS_STEPS", "choose_estimator",
           "published_counts"]

#: The analysis steps in order (``load`` and ``report`` always run).
ANALYSIS_STEPS = ("load", "weighting", "reliability", "cfa", "invariance", "indicators", "gap", "drift", "change",
                  "claims", "kpi", "review", "report")
_SECTION_STEPS = ("reliability", "cfa", "invariance", "indicators", "gap", "drift", "change", "claims", "kpi",
                  "review")
#: Relative tolerance of :func:`reproduce` (numbers re-computed with the same seed agree far closer).
REPRODUCE_RTOL = 1e-7


@dataclass(frozen=True)
class Analysis(Result):
    """What :func:`analyze` did.

    Attributes
    ----------
    out : str
        Output folder.
    steps : tuple of dict
        ``name``, ``ok``, ``seconds``, ``error`` per step.
    report : Report or None
        The report (``report/`` under ``out``).
    summary : dict
        The machine-readable summary (also ``summary.json``).
    """

    out: str = ""
    steps: tuple = ()
    report: Any = None
    summary: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every step and every report section succeeded."""
        return all(s["ok"] for s in self.steps) and (self.report is None or self.report.ok)

    def to_frame(self) -> pd.DataFrame:
        """One row per step: name, ok, seconds, error."""
        return pd.DataFrame(list(self.steps), columns=["name", "ok", "seconds", "error"])


def choose_estimator(instrument: Any, estimator: str = "auto") -> str:
    """The CFA estimator: ``WLSMV`` (ordinal) for items on a scale of ordered categories, else ``ML``.

    Parameters
    ----------
    instrument : Instrument
        The instrument (its ``scale.points``).
    estimator : {"auto", "ML", "MLR", "WLSMV"}
        ``auto`` chooses; anything else is returned upper-cased.

    Returns
    -------
    str

    Examples
    --------
    >>> import cips_stats as cs
    >>> choose_estimator(cs.Instrument.default()), choose_estimator(cs.Instrument.default(), "MLR")
    ('WLSMV', 'MLR')
    """
    if estimator != "auto":
        return str(estimator).upper()
    points = getattr(getattr(instrument, "scale", None), "points", None)
    # Likert-type answers are ordered categories: estimate on polychoric correlations (Rhemtulla,
    # Brosseau-Liard & Savalei 2012, Psychological Methods 17(3): categorical estimation is preferable
    # with few categories and no worse with more); a scale without declared points is treated as continuous.
    return "WLSMV" if points else "ML"


def _warm() -> None:
    """Import what the workers run (the model fits, matplotlib) before they are needed."""
    from . import plotting  # noqa: F401
    from .factor import invariance  # noqa: F401
    from matplotlib.backends import backend_agg  # noqa: F401


def _warm_workers(n_jobs: int | None) -> None:
    """Start the worker processes now, while the survey loads and the first steps run in this one."""
    from . import plotting

    workers = plotting.default_jobs() if n_jobs is None else n_jobs
    if workers > 1:
        ex = plotting._executor(workers)
        for _ in range(workers):
            ex.submit(_warm)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_table(value: Any, what: str) -> pd.DataFrame | None:
    if value is None or isinstance(value, pd.DataFrame):
        return value
    path = Path(value)
    if not path.is_file():
        raise DataError(f"The {what} file {str(path)!r} does not exist.",
                        [Problem("file_missing", "File not found.", file=str(path))])
    try:
        return pd.read_csv(path, sep=None, engine="python", encoding="utf-8-sig")
    except Exception as exc:
        raise DataError(f"The {what} file {str(path)!r} cannot be read as CSV: {exc}.",
                        [Problem("file_unreadable", str(exc), file=str(path))]) from None


def _support(table: pd.DataFrame | None) -> pd.DataFrame | None:
    if table is None:
        return None
    need = {"country", "factor", "supported"}
    if not need <= set(table.columns):
        raise DataError(f"The support table needs columns country, factor, supported; it has {list(table.columns)}.",
                        [Problem("support_columns", "Missing column.", column=c) for c in sorted(need - set(table))])
    t = table.copy()
    t["country"] = t["country"].astype(str)
    if t["supported"].dtype != bool:
        words = t["supported"].astype(str).str.strip().str.lower()
        m = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
        bad = ~words.isin(list(m))
        if bad.any():
            raise DataError("The support table's supported column must be true/false (or 1/0, yes/no).",
                            [Problem("support_value", "Not a boolean.", row=int(i) + 1, column="supported",
                                     value=str(t.loc[i, "supported"])) for i in t.index[bad][:20]])
        t["supported"] = words.map(m).astype(bool)
    return t


def published_counts(gate: Any) -> dict:
    """The respondent counts a summary may publish, as the disclosure gate allows.

    A total over cells is published only when the gate says so
    (:meth:`cips_stats.disclosure.Gate.total_published`): a total that no
    complementary suppression could protect is withheld, because the total
    minus the published cells would give the suppressed cells back.  The sum
    of the *published* cells is always safe (a reader can add them up).

    Parameters
    ----------
    gate : cips_stats.disclosure.Gate
        The gate of the survey (:meth:`~cips_stats.disclosure.Gate.for_survey`).

    Returns
    -------
    dict
        ``respondents`` (the total, or ``None`` when withheld),
        ``respondents_by_group`` (group → total or ``None``),
        ``respondents_in_published_cells``, ``cells``, ``cells_suppressed`` and
        ``withheld`` (a sentence per withheld total).

    Examples
    --------
    >>> import pandas as pd
    >>> from cips_stats import disclosure
    >>> cells = pd.DataFrame({"country": ["A", "B", "A", "B"], "iteration": 1,
    ...                       "group": ["o", "o", "p", "p"], "n": [40, 50, 1, 2]})
    >>> c = published_counts(disclosure.Gate.from_cells(cells))
    >>> c["respondents"], c["respondents_by_group"], c["respondents_in_published_cells"]
    (None, {'o': 90, 'p': None}, 90)
    """
    cells = gate.cells
    if cells is None:
        return {"respondents": None, "respondents_by_group": {}, "respondents_in_published_cells": None,
                "cells": 0, "cells_suppressed": 0, "withheld": []}
    n = pd.to_numeric(cells["n"], errors="coerce").fillna(0).astype(int)
    sup = cells["suppressed"].to_numpy(dtype=bool)
    withheld = []

    def total(name: str, mask: Any, what: str) -> int | None:
        if gate.total_published(name):
            return int(n[mask].sum())
        withheld.append(f"{what}: withheld by disclosure control (with the published cells it would reveal "
                        f"cells below the minimum size of {gate.min_n}).")
        return None

    grp = cells["group"].astype(str)
    return {"respondents": total("total", slice(None), "respondents"),
            "respondents_by_group": {g: total(f"group={g}", (grp == g).to_numpy(), f"respondents ({g})")
                                     for g in pd.unique(grp)},
            "respondents_in_published_cells": int(n[~sup].sum()),
            "cells": int(len(cells)), "cells_suppressed": int(sup.sum()), "withheld": withheld}


def _key_source(value: Any) -> dict | None:
    """Where the anonymisation key came from: its path only — no digest of a key is ever published (a
    hash would let a reader test guesses of a weak, user-chosen key offline)."""
    src = _source(value)
    if src is not None:
        src["sha256"] = None
        src["note"] = "no digest of the key is recorded"
    return src


def _source(value: Any) -> dict | None:
    if value is None:
        return None
    if isinstance(value, (str, Path)):
        p = Path(value).resolve()
        return {"path": str(p), "sha256": _sha256(p) if p.is_file() else None}
    return {"path": None, "sha256": None, "note": f"given in memory ({type(value).__name__})"}


def analyze(source: Any, *, instrument: Any = None, support: Any = None, margins: Any = None, targets: Any = None,
            out: str | Path = "analysis", anonymise: bool = False, key: str | bytes | None = None,
            key_file: str | Path | None = None, min_cell: int = 10, seed: int | None = None,
            title: str | None = None, estimator: str = "auto", n_boot: int = 1000,
            truth: Mapping[str, pd.DataFrame] | None = None, truth_simulate: Mapping[str, Any] | None = None,
            load_options: Mapping[str, Any] | None = None,
            change_options: Mapping[str, Any] | None = None, claims_options: Mapping[str, Any] | None = None,
            overwrite: bool = False, steps: Sequence[str] | None = None,
            progress: Callable[[str, str], None] | None = None, command: str | None = None,
            n_jobs: int | None = None) -> Analysis:
    """Run the whole analysis of a survey and write its report, results and summary.

    Parameters
    ----------
    source : str, Path or SurveyData
        The survey file (any format :func:`cips_stats.load` reads) or loaded data.
    instrument : str, Path or Instrument, optional
        Instrument YAML or object (default: the packaged CIPS instrument, or
        the data's own).
    support : str, Path or DataFrame, optional
        Support table (``country, factor, supported``): the change model and the
        claim audit.
    margins : str, Path or DataFrame, optional
        Population margins (``variable, category, total|share`` and optional
        cell keys): the weights are raked to them first.
    targets : str, Path or DataFrame, optional
        KPI targets (``factor, group, target``).
    out : str or Path
        Output folder.
    anonymise, key, key_file, min_cell
        Disclosure control (see :func:`cips_stats.report.build`); ``key_file``
        is read with :func:`cips_stats.disclosure.read_key` and its path (never
        the key) is recorded so that :func:`reproduce` can code countries alike.
    seed : int, optional
        Seed of every random step (``None`` draws one and records it).
    title : str, optional
        Report title (default from the instrument).
    estimator : {"auto", "ML", "MLR", "WLSMV"}
        CFA and invariance estimator; ``auto`` = :func:`choose_estimator`.
    n_boot : int
        Bootstrap replicates of the indicators.
    truth : mapping, optional
        Known truth of a synthetic survey (coverage overlays).
    truth_simulate : mapping, optional
        The :func:`cips_stats.simulate` arguments of a synthetic survey: its
        truth is re-created from them (here when ``truth`` is not given, and
        by :func:`reproduce`).
    load_options : mapping, optional
        Keyword arguments of :func:`cips_stats.load` (column mapping, CSV options).
    change_options, claims_options : mapping, optional
        Keyword arguments of ``cs.change.fit`` (e.g. ``draws``, ``tune``,
        ``chains``) and :func:`cips_stats.claims.audit` (e.g. ``n_perm``).
    overwrite : bool
        Write into a non-empty folder cips-stats did not create.
    steps : sequence of str, optional
        Analysis steps to run (default all of :data:`ANALYSIS_STEPS`);
        ``load`` and ``report`` always run.
    progress : callable, optional
        ``progress(step, "start" | "done" | "failed")``.
    command : str, optional
        The command line recorded in the results.
    n_jobs : int, optional
        Worker processes (joblib's reusable loky pool, started at once so that
        they are ready when needed) fitting the independent invariance ladders
        and drawing the report's figures while the analysis goes on; default
        :func:`cips_stats.plotting.default_jobs` (the cores, or 1 on fewer
        than 4); 1 runs everything in this process.  The
        results are the same either way.

    Returns
    -------
    Analysis
        ``.ok``, ``.steps`` (timed), ``.report``, ``.summary``.

    Raises
    ------
    DataError
        The survey or an input table cannot be read (nothing is analysed).

    Examples
    --------
    >>> import tempfile, pathlib, cips_stats as cs
    >>> from cips_stats.pipeline import analyze
    >>> sim = cs.simulate(seed=2, n_countries=2, n_repeat=1, n_officials=40, n_private=30)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     a = analyze(sim.data, out=pathlib.Path(tmp, "a"), n_boot=20, seed=1, steps=("indicators",))
    ...     a.ok, sorted(p.name for p in pathlib.Path(tmp, "a").glob("[!.]*.json"))
    (True, ['results.json', 'summary.json'])
    """
    from . import output as _out
    from .report.builder import _check_jobs

    t_all = time.perf_counter()
    seed = resolve_seed(seed)
    n_jobs = _check_jobs(n_jobs)
    _warm_workers(n_jobs)
    wanted = _wanted(steps)
    folder = _out.OutputFolder(out, overwrite=overwrite)
    out = folder.root
    runner = _StepRunner(progress)
    # ---- inputs (a bad input stops everything: nothing would be right)
    data = runner.run("load", lambda: _load_survey(source, instrument, load_options), fatal=True)
    if truth is None and truth_simulate is not None:
        from .simulate import simulate as _simulate

        truth = _simulate(**dict(truth_simulate)).truth
    sup = _support(_read_table(support, "support"))
    tgt = _read_table(targets, "targets")
    mar = _read_table(margins, "margins")
    from . import disclosure

    if key_file is not None and key is None:
        key = disclosure.read_key(key_file)
    if anonymise and key is None:
        key = disclosure.new_key()      # one key for the report and the summary (never written)
    # the publication gate of everything this function writes besides the report (summary, results)
    gate = disclosure.Gate.for_survey(data, min_n=min_cell, key=key, anonymise=anonymise)
    est = choose_estimator(data.instrument, estimator)
    if mar is not None and "weighting" in wanted:
        data = _weight(runner, data, mar)
    # ---- the analysis steps, then the report of their results
    inputs = {"support": sup, "targets": tgt, "change_options": dict(change_options or {}),
              "claims_options": dict(claims_options or {})}
    results = _compute_steps(runner, data, wanted, inputs, seed=seed, n_boot=n_boot, estimator=est, n_jobs=n_jobs)
    sources = _sources(source, instrument=instrument, support=support, margins=margins, targets=targets,
                       key_file=key_file)
    sections = ("data", *[s for s in _SECTION_STEPS if s in wanted], "appendix")
    rep = _report(runner, data, out / "report", results=results, sections=sections, truth=truth, seed=seed,
                  n_boot=n_boot, anonymise=anonymise, key=key, min_cell=min_cell, title=title, estimator=est,
                  n_jobs=n_jobs, inputs={**inputs, "sources": {k: Path(v["path"]).name for k, v in sources.items()
                                                               if v.get("path")}})
    # ---- what the folder records: results.json (to re-run), summary.json (what happened)
    prov = Provenance.build("analyze", data=data, seed=seed,
                            options={"estimator": est, "n_boot": n_boot, "min_cell": min_cell,
                                     "anonymise": anonymise, "title": title, "steps": sorted(wanted)})
    rerun = {"load_options": dict(load_options or {}), "seed": seed, "estimator": est, "n_boot": n_boot,
             "min_cell": min_cell, "anonymise": anonymise, "title": title,
             "change_options": dict(change_options or {}), "claims_options": dict(claims_options or {}),
             "steps": None if steps is None else list(steps),
             "truth_simulate": None if truth_simulate is None else dict(truth_simulate)}
    results_doc = _results_doc(data, sources, rerun, prov, rep, command)
    summary = _summary(data, runner.records, rep, gate, out=out, seed=seed, estimator=est, t_all=t_all)
    # results.json holds no count and no message (paths, options and hashes: what reproduce needs); the
    # summary's counts and step errors came through the gate
    _out.write_json(folder.path("results.json"), to_jsonable(results_doc))
    _out.write_json(folder.path("summary.json"), to_jsonable(summary))
    folder.record([f"report/{f}" for f in (rep.files if rep else ())] + ([f"report/{_out.MANIFEST}"] if rep else []))
    return Analysis(out=str(out), steps=tuple(runner.records), report=rep, summary=summary, provenance=prov)


def _wanted(steps: Sequence[str] | None) -> set:
    """The steps to run (``load`` and ``report`` always); unknown names raise."""
    wanted = set(ANALYSIS_STEPS if steps is None else (*steps, "load", "report"))
    unknown = wanted - set(ANALYSIS_STEPS)
    if unknown:
        raise CipsError(f"steps= names unknown steps {sorted(unknown)}; choose from {', '.join(ANALYSIS_STEPS)}.")
    return wanted


class _StepRunner:
    """Runs the analysis steps one by one: timed, announced to ``progress``, failures recorded, not raised.

    Warnings are kept with the step (the results carry the same conditions as
    flags, which the report shows as sentences), not printed over the
    progress line.
    """

    def __init__(self, progress: Callable[[str, str], None] | None) -> None:
        self.records: list[dict] = []
        self.say = progress or (lambda step, state: None)

    def run(self, name: str, func: Callable[[], Any], *, fatal: bool = False) -> Any:
        """``func()`` as step ``name``; its exception is returned in place of a value (raised when ``fatal``)."""
        self.say(name, "start")
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                value = func()
                rec = {"name": name, "ok": True, "seconds": time.perf_counter() - t0, "error": None}
                self.say(name, "done")
            except Exception as exc:
                rec = {"name": name, "ok": False, "seconds": time.perf_counter() - t0,
                       "error": f"{type(exc).__name__}: {exc}"}
                value = exc
                self.say(name, "failed")
        rec["warnings"] = len(caught)
        self.records.append(rec)
        if fatal and isinstance(value, BaseException):
            raise value
        return value


def _load_survey(source: Any, instrument: Any, load_options: Mapping[str, Any] | None) -> Any:
    """The survey: ``source`` itself when it is loaded data, else :func:`cips_stats.load` of the file."""
    from .instrument import Instrument

    inst = instrument
    if isinstance(inst, (str, Path)):
        inst = Instrument.from_yaml(inst)
    if hasattr(source, "frame") and hasattr(source, "instrument"):
        return source
    from . import load as _load

    return _load(source, instrument=inst if inst is not None else Instrument.default(), **dict(load_options or {}))


def _weight(runner: _StepRunner, data: Any, margins: pd.DataFrame) -> Any:
    """The ``weighting`` step: the survey raked to ``margins`` (the survey as it was when raking fails)."""
    def rake():
        from . import weighting

        return weighting.rake(data, margins=margins).data

    w = runner.run("weighting", rake)
    return data if isinstance(w, BaseException) else w


def _compute_steps(runner: _StepRunner, data: Any, wanted: set, inputs: dict, **common: Any) -> dict[str, Any]:
    """The section steps wanted, in order; a failed step's exception stands in for its result."""
    from .report import compute

    results: dict[str, Any] = {}
    for name in _SECTION_STEPS:
        if name in wanted:
            results[name] = runner.run(name, lambda name=name: compute(name, data, results=results, inputs=inputs,
                                                                       **common))
    return results


def _sources(source: Any, **inputs: Any) -> dict[str, dict]:
    """The input files (path and SHA-256) by role; the key file's path only."""
    named = {"survey": _source(source if isinstance(source, (str, Path)) else None),
             **{k: (_key_source(v) if k == "key_file" else _source(v)) for k, v in inputs.items()}}
    return {k: v for k, v in named.items() if v is not None}


def _report(runner: _StepRunner, data: Any, out: Path, *, inputs: dict, **options: Any) -> Any:
    """The ``report`` step (:func:`cips_stats.report.build`); None when it failed."""
    from .report import build

    rep = runner.run("report", lambda: build(data, out, overwrite=True,
                                             inputs={**inputs, "steps": runner.records}, **options))
    return None if isinstance(rep, BaseException) else rep


def _results_doc(data: Any, sources: dict, rerun: dict, prov: Any, rep: Any, command: str | None) -> dict:
    """``results.json``: what :func:`reproduce` needs (input files with hashes, options, seed); no count."""
    from . import __version__

    files = {k: sources.get(v) for k, v in (("source", "survey"), ("instrument", "instrument"),
                                            ("support", "support"), ("margins", "margins"),
                                            ("targets", "targets"), ("key_file", "key_file"))}
    return {
        "kind": "CipsAnalysis", "package_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command, "rerun": {**files, **rerun},
        "provenance": prov.to_dict(), "data_fingerprint": data.fingerprint,
        "report": "report/report.json", "tables": sorted(f for f in (rep.files if rep else ()) if f.endswith(".csv")),
    }


def _summary(data: Any, records: list[dict], rep: Any, gate: Any, *, out: Path, seed: int, estimator: str,
             t_all: float) -> dict:
    """``summary.json``: the steps with their times, and the counts and messages the gate lets through."""
    counts = published_counts(gate)
    return {
        "kind": "AnalysisSummary", "ok": all(r["ok"] for r in records) and (rep is not None and rep.ok),
        "out": str(out), "seed": seed, "estimator": estimator,
        "respondents": counts["respondents"], "countries": int(data.frame["country"].nunique()),
        "groups": list(map(str, data.groups)), "iterations": [str(i) for i in data.iterations],
        "counts": counts,
        # step errors through the gate: names coded, messages about suppressed cells redacted
        "steps": [{**r, "seconds": round(r["seconds"], 4), "error": gate.message(r["error"])} for r in records],
        "sections": {} if rep is None else {k: {"ok": v["ok"], "error": v["error"], "seconds": round(v["seconds"], 4)}
                                            for k, v in rep.sections.items()},
        "failures": {} if rep is None else dict(rep.failures),
        "report": None if rep is None else str(Path(rep.index)),
        "seconds": time.perf_counter() - t_all,
    }


# ============================================================================================ reproduce
@dataclass(frozen=True)
class Reproduction(Result):
    """Number-by-number comparison of an analysis with its re-run.

    Attributes
    ----------
    compared, matched : int
        Values compared and values equal (numbers within ``rtol``).
    mismatches : pandas.DataFrame
        ``table, row, column, original, reproduced`` of every difference
        (row 1-based; whole-table differences have row 0).
    tables : int
        Tables compared.
    rtol : float
        Relative tolerance of numbers.
    """

    compared: int = 0
    matched: int = 0
    tables: int = 0
    mismatches: pd.DataFrame = field(default_factory=pd.DataFrame)
    rtol: float = REPRODUCE_RTOL
    rerun_out: str = ""

    @property
    def ok(self) -> bool:
        """True when every value matched."""
        return self.compared > 0 and self.compared == self.matched and not len(self.mismatches)

    def to_frame(self) -> pd.DataFrame:
        """The mismatches."""
        return self.mismatches


#: Tables that legitimately differ between runs (times).
_VOLATILE_TABLES = ("appendix_steps.csv",)
_VOLATILE_COLUMNS = ("seconds",)


def _compare_tables(a: Path, b: Path, rtol: float) -> tuple[int, int, list[dict]]:
    import numpy as np

    rel = a.name
    try:
        x = pd.read_csv(a, encoding="utf-8-sig", keep_default_na=True)
        y = pd.read_csv(b, encoding="utf-8-sig", keep_default_na=True)
    except Exception as exc:
        return 1, 0, [{"table": rel, "row": 0, "column": "", "original": "unreadable", "reproduced": str(exc)}]
    if list(x.columns) != list(y.columns) or len(x) != len(y):
        return 1, 0, [{"table": rel, "row": 0, "column": "",
                       "original": f"{len(x)} rows, columns {list(x.columns)}",
                       "reproduced": f"{len(y)} rows, columns {list(y.columns)}"}]
    compared = matched = 0
    bad: list[dict] = []
    for c in x.columns:
        if c in _VOLATILE_COLUMNS:
            continue
        u, v = x[c], y[c]
        if pd.api.types.is_numeric_dtype(u) and pd.api.types.is_numeric_dtype(v):
            uf, vf = u.to_numpy(dtype=float), v.to_numpy(dtype=float)
            both_nan = np.isnan(uf) & np.isnan(vf)
            eq = both_nan | np.isclose(uf, vf, rtol=rtol, atol=1e-12)
        else:
            us, vs = u.astype(str).where(u.notna(), ""), v.astype(str).where(v.notna(), "")
            eq = (us == vs).to_numpy()
        compared += len(eq)
        matched += int(eq.sum())
        for i in np.flatnonzero(~eq)[:50]:
            bad.append({"table": rel, "row": int(i) + 1, "column": str(c), "original": str(u.iloc[i]),
                        "reproduced": str(v.iloc[i])})
    return compared, matched, bad


def reproduce(folder: str | Path, *, out: str | Path | None = None, rtol: float = REPRODUCE_RTOL,
              progress: Callable[[str, str], None] | None = None) -> Reproduction:
    """Re-run an analysis from its ``results.json`` and compare every published number.

    Parameters
    ----------
    folder : str or Path
        The folder :func:`analyze` wrote (holding ``results.json``).
    out : str or Path, optional
        Where the re-run is written (default: a temporary folder, removed).
    rtol : float
        Relative tolerance of numbers (default 1e-7).
    progress : callable, optional
        As for :func:`analyze`.

    Returns
    -------
    Reproduction
        ``.ok``, ``.compared``, ``.matched``, ``.mismatches``.

    Raises
    ------
    DataError
        No ``results.json``, or an input file missing or changed since (its
        SHA-256 differs).

    Examples
    --------
    >>> import tempfile, pathlib, cips_stats as cs
    >>> from cips_stats.pipeline import analyze, reproduce
    >>> sim = cs.simulate(seed=2, n_countries=2, n_repeat=1, n_officials=40, n_private=30)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     raw = cs.data.write_raw(sim.raw, pathlib.Path(tmp, "raw.csv"), instrument=sim.instrument)
    ...     a = analyze(raw, out=pathlib.Path(tmp, "a"), n_boot=20, seed=1, steps=("indicators",))
    ...     r = reproduce(pathlib.Path(tmp, "a"))
    >>> r.ok, r.compared == r.matched
    (True, True)
    """
    import shutil
    import tempfile

    folder = Path(folder)
    doc_path = folder / "results.json"
    if not doc_path.is_file():
        raise DataError(f"{str(folder)!r} holds no results.json: not a folder written by cips-stats analyze.",
                        [Problem("results_missing", "results.json not found.", file=str(doc_path))])
    try:
        doc = json.loads(doc_path.read_text(encoding="utf-8"))
        rr = doc["rerun"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{str(doc_path)!r} is not a results file of cips-stats analyze ({exc}).",
                        [Problem("results_unreadable", str(exc), file=str(doc_path))]) from None
    src = rr.get("source") or {}
    if not src.get("path"):
        raise DataError("The analysis was run on data given in memory; there is no file to re-run it from.",
                        [Problem("source_in_memory", "No source file recorded.", file=str(doc_path))])
    probs = []
    for what in ("source", "instrument", "support", "margins", "targets", "key_file"):
        s = rr.get(what)
        if not s or not s.get("path"):
            continue
        p = Path(s["path"])
        if not p.is_file():
            probs.append(Problem("input_missing", f"The {what} file is missing.", file=str(p)))
        elif s.get("sha256") and _sha256(p) != s["sha256"]:
            probs.append(Problem("input_changed", f"The {what} file changed since the analysis (SHA-256 differs).",
                                 file=str(p)))
    if probs:
        raise DataError(f"Cannot reproduce: {len(probs)} input file(s) missing or changed.", probs)
    if rr.get("anonymise") and not (rr.get("key_file") or {}).get("path"):
        raise DataError("The analysis anonymised countries with a key that was not kept (no --anonymise-key "
                        "file): the codes cannot be re-created.",
                        [Problem("key_not_kept", "No key file recorded.", file=str(doc_path))])
    tmp = None
    if out is None:
        tmp = tempfile.mkdtemp(prefix="cips-reproduce-")
        out = Path(tmp) / "rerun"

    def path_of(what):
        s = rr.get(what) or {}
        return s.get("path")

    try:
        analyze(src["path"], instrument=path_of("instrument"), support=path_of("support"),
                margins=path_of("margins"), targets=path_of("targets"), key_file=path_of("key_file"),
                out=out, anonymise=bool(rr.get("anonymise")), min_cell=int(rr["min_cell"]), seed=int(rr["seed"]),
                title=rr.get("title"), estimator=rr.get("estimator", "auto"), n_boot=int(rr["n_boot"]),
                load_options=rr.get("load_options") or None, change_options=rr.get("change_options") or None,
                claims_options=rr.get("claims_options") or None, steps=rr.get("steps"), progress=progress,
                truth_simulate=rr.get("truth_simulate"),
                overwrite=True)
        orig = {p.name: p for p in (folder / "report" / "tables").glob("*.csv")}
        new = {p.name: p for p in (Path(out) / "report" / "tables").glob("*.csv")}
        compared = matched = 0
        bad: list[dict] = []
        for name in sorted(set(orig) | set(new)):
            if name in _VOLATILE_TABLES:
                continue
            if name not in orig or name not in new:
                compared += 1
                bad.append({"table": name, "row": 0, "column": "",
                            "original": "present" if name in orig else "missing",
                            "reproduced": "present" if name in new else "missing"})
                continue
            c, m, b = _compare_tables(orig[name], new[name], rtol)
            compared, matched = compared + c, matched + m
            bad += b
        mism = pd.DataFrame(bad, columns=["table", "row", "column", "original", "reproduced"])
        prov = Provenance.build("reproduce", seed=int(rr["seed"]), options={"folder": str(folder), "rtol": rtol})
        return Reproduction(compared=compared, matched=matched, tables=len(set(orig) | set(new)), mismatches=mism,
                            rtol=rtol, rerun_out="" if tmp else str(out), provenance=prov)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
