"""The ``cips-stats`` command line: a thin layer over the public API.

Commands
--------
``cips-stats demo [--out DIR] [--seed N] [--countries N] [--n-boot B]``
    Run the pipeline on a synthetic CIPS survey with known truth and write its
    outputs to DIR: raw table, validation report, truth tables, then the
    published (suppressed) tables of reliability, indicators, gap, CFA,
    invariance and composition drift under ``tables/``, the HTML report under
    ``report/`` and ``summary.json`` with the time of every step.
``cips-stats report FILE --out DIR [--instrument YAML] [--anonymise] [...]``
    Load a survey file and build the HTML report (``index.html``, CSV tables,
    ``report.json``); exit status 1 when a section failed, 2 when the file
    cannot be read.
``cips-stats simulate --out FILE [--seed N] [--countries N] [--points 4|5]``
    Write a synthetic RAW respondent table; the format follows the extension
    (``.csv``, ``.xlsx``, ``.sav``, ``.dta``, ``.parquet``).
``cips-stats validate FILE [--instrument YAML] [input options]``
    Print the validation report of a survey file; exit status 1 when it has problems.

Input options (every command that reads a survey: ``validate``, ``report``, ``analyze``):
``--weight COL``, ``--id COL`` / ``--generate-ids``, ``--country VALUE|COL``,
``--iteration VALUE|COL``, ``--iteration-labels 2019-20=1,...``, ``--group VALUE|COL``,
``--sep``, ``--decimal``, ``--encoding``, ``--sheet``, ``--max-rows`` (:func:`input_options`);
they override the instrument's ``columns:`` mapping.
``cips-stats --version``

The demo is a list of named steps (:data:`DEMO_STEPS`); each step receives the
shared :class:`DemoContext`, writes its files under ``ctx.out`` and returns
their paths. Add a step by appending ``("name", function)`` to the list.

Examples
--------
>>> from click.testing import CliRunner
>>> from cips_stats.cli import main
>>> r = CliRunner().invoke(main, ["--version"])
>>> r.exit_code, r.output.startswith("cips-stats, version")
(0, True)
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn

import click

from . import __version__

__all__ = ["main", "DemoContext", "DEMO_STEPS", "run_demo", "input_options"]

#: Exit status: data problems found (validate) or a demo step failed.
EXIT_PROBLEMS = 1
#: Exit status: the input could not be read at all (bad file, bad instrument).
EXIT_UNREADABLE = 2
#: Exit status: the output could not be written (folder not ours, not writable, a file in the way).
EXIT_OUTPUT = 3


def _console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


# ------------------------------------------------------------------------------ reading a survey
def _load_options(weight: str | None = None, id_column: str | None = None, generate_ids: bool = False,
                  country: str | None = None, iteration: str | None = None, iteration_labels: str | None = None,
                  group: str | None = None, sep: str | None = None, decimal: str | None = None,
                  encoding: str | None = None, sheet: str | None = None, max_rows: int | None = None
                  ) -> dict[str, Any]:
    """The ``cs.load`` keyword arguments of the input options (only those given).

    Examples
    --------
    >>> from cips_stats.cli import _load_options
    >>> _load_options(weight="pondération", id_column="id", country="NL", sep=";", iteration_labels="2019-20=1")
    {'columns': {'weight': 'pondération', 'respondent_id': 'id', 'country': {'column_or_value': 'NL'}}, \
'iterations': {'2019-20': 1}, 'sep': ';'}
    """
    columns: dict[str, Any] = {}
    if weight:
        columns["weight"] = weight
    if id_column and generate_ids:
        raise click.BadParameter("give either --id or --generate-ids.", param_hint="--id")
    if id_column:
        columns["respondent_id"] = id_column
    if generate_ids:
        columns["respondent_id"] = {"generate": True}
    for name, value in (("country", country), ("iteration", iteration), ("group", group)):
        if value:
            columns[name] = {"column_or_value": value}
    out: dict[str, Any] = {"columns": columns} if columns else {}
    if iteration_labels:
        labels = {}
        for part in iteration_labels.split(","):
            label, eq, number = part.rpartition("=")
            if not eq or not label.strip() or not number.strip().isdigit() or int(number) < 1:
                raise click.BadParameter(f"expected LABEL=N pairs separated by commas (e.g. 2019-20=1,2022-23=2), "
                                         f"not {part!r}.", param_hint="--iteration-labels")
            labels[label.strip()] = int(number)
        out["iterations"] = labels
    if sep is not None:
        out["sep"] = "\t" if sep.lower() in ("tab", "\\t") else sep
    for key, value in (("decimal", decimal), ("encoding", encoding), ("max_rows", max_rows)):
        if value is not None:
            out[key] = value
    if sheet is not None:
        out["sheet"] = int(sheet) if sheet.isdigit() else sheet
    return out


def input_options(func: Callable) -> Callable:
    """Add the options of every command that reads a survey (``validate``, ``report``, ``analyze``).

    Parameters
    ----------
    func : callable
        A click command function with an ``inputs`` parameter.

    Returns
    -------
    callable
        The command with ``--weight``, ``--id``, ``--generate-ids``, ``--country``,
        ``--iteration``, ``--iteration-labels``, ``--group``, ``--sep``, ``--decimal``,
        ``--encoding``, ``--sheet`` and ``--max-rows``; it receives ``inputs``, the ``cs.load``
        keyword arguments they give (flags override the instrument's ``columns:``).

    Examples
    --------
    >>> import click
    >>> from click.testing import CliRunner
    >>> from cips_stats.cli import input_options
    >>> @click.command()
    ... @input_options
    ... def show(inputs):
    ...     click.echo(sorted(inputs["columns"]))
    >>> print(CliRunner().invoke(show, ["--weight", "pondération", "--country", "NL"]).output.strip())
    ['country', 'weight']
    """
    options = [
        click.option("--weight", "weight", default=None, metavar="COL",
                     help="The weight column's name in the file (e.g. pondération); default: a column named weight."),
        click.option("--id", "id_column", default=None, metavar="COL",
                     help="The respondent id column's name (default respondent_id)."),
        click.option("--generate-ids", "generate_ids", is_flag=True, default=False,
                     help="Number the rows 1..n as respondent ids (a file without ids)."),
        click.option("--country", "country", default=None, metavar="VALUE|COL",
                     help="The country column's name, or one country for every row."),
        click.option("--iteration", "iteration", default=None, metavar="VALUE|COL",
                     help="The iteration column's name, or one iteration for every row."),
        click.option("--iteration-labels", "iteration_labels", default=None, metavar="LABEL=N,...",
                     help="Iteration labels mapped to numbers, e.g. 2019-20=1,2022-23=2."),
        click.option("--group", "group", default=None, metavar="VALUE|COL",
                     help="The respondent group column's name, or one group for every row."),
        click.option("--sep", "sep", default=None, metavar="CHAR",
                     help="CSV field separator (default: detected from the header; 'tab' for a tab)."),
        click.option("--decimal", "decimal", default=None, type=click.Choice([".", ","]),
                     help="Decimal mark of numbers in text (default: ',' for a column whose numbers use only commas)."),
        click.option("--encoding", "encoding", default=None,
                     help="CSV text encoding (default: detected: UTF-8, UTF-8/UTF-16 with a BOM, else cp1252)."),
        click.option("--sheet", "sheet", default=None, help="Excel sheet: name or 0-based position (default 0)."),
        click.option("--max-rows", "max_rows", default=None, type=click.IntRange(min=1),
                     help="Most data records accepted (default 5,000,000)."),
    ]
    names = ("weight", "id_column", "generate_ids", "country", "iteration", "iteration_labels", "group", "sep",
             "decimal", "encoding", "sheet", "max_rows")

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs["inputs"] = _load_options(**{k: kwargs.pop(k) for k in names})
        return func(*args, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


@dataclass
class DemoContext:
    """What the demo steps share.

    Attributes
    ----------
    out : pathlib.Path
        Output directory (created).
    seed : int
        Seed of every random step.
    countries : int or None
        Countries of the synthetic survey (None: the published 25, 17 repeated).
    n_boot : int
        Bootstrap replicates of the indicators.
    sim : Simulation or None
        The synthetic survey, set by the ``simulate`` step.
    state : dict
        Anything a step wants to hand to later steps (e.g. paths, results).
    """

    out: Path
    seed: int = 1
    countries: int | None = None
    n_boot: int = 1000
    sim: Any = None
    state: dict = field(default_factory=dict)

    def require_sim(self):
        """Return the simulation, or fail with a clear message when the simulate step did not run."""
        if self.sim is None:
            raise RuntimeError("This step needs the synthetic survey, but the 'simulate' step did not succeed.")
        return self.sim


def _simulate_kwargs(seed: int, countries: int | None, points: int | None = None) -> dict[str, Any]:
    kw: dict[str, Any] = {"seed": seed}
    if countries is not None:
        kw["n_countries"] = countries
        kw["n_repeat"] = min(countries, max(1, round(countries * 17 / 25)))
    if points is not None:
        kw["points"] = points
    return kw


def _step_simulate(ctx: DemoContext) -> list[Path]:
    import cips_stats as cs

    kw = _simulate_kwargs(ctx.seed, ctx.countries)
    # the demo exercises disclosure control: tiny cells and a tiny category are planted when the layout
    # has room for them (two countries surveyed twice); the indicator truths do not change
    kw["small_cells"] = kw.get("n_repeat", 17) >= 2
    ctx.sim = cs.simulate(**kw)
    path = ctx.out / "raw_survey.csv"
    cs.data.write_raw(ctx.sim.raw, path, instrument=ctx.sim.instrument)
    inst_path = ctx.out / "instrument.yaml"
    ctx.sim.instrument.to_yaml(inst_path)
    ctx.state["raw_path"] = path
    return [path, inst_path]


def _step_validate(ctx: DemoContext) -> list[Path]:
    import cips_stats as cs

    sim = ctx.require_sim()
    report = cs.data.validate(ctx.state["raw_path"], instrument=sim.instrument)
    txt = ctx.out / "validation_report.txt"
    txt.write_text(report.to_text() + "\n", encoding="utf-8")
    # the file is read once: a clean report's data is what load(strict=True) returns
    data = report.data if report.ok else cs.load(ctx.state["raw_path"], instrument=sim.instrument)
    if data.fingerprint != sim.data.fingerprint:
        raise RuntimeError("The raw table written to CSV did not load back to the same survey data.")
    exc = ctx.out / "exclusions.csv"
    data.exclusions.to_csv(exc, index=False)
    ctx.state["validation_ok"] = bool(report.ok)
    ctx.state["data_fingerprint"] = data.fingerprint
    if not report.ok:
        raise RuntimeError(f"The synthetic survey did not validate ({len(report.problems)} problems); see {txt}.")
    return [txt, exc]


def _step_truth(ctx: DemoContext) -> list[Path]:
    sim = ctx.require_sim()
    folder = ctx.out / "truth"
    folder.mkdir(exist_ok=True)
    paths = []
    for name, table in sim.truth.items():
        p = folder / f"{name}.csv"
        table.to_csv(p, index=False)
        paths.append(p)
    return paths


def _analysis_step(section: str) -> Callable[[DemoContext], list[Path]]:
    """A demo step that computes one report section and writes its published tables to ``tables/``."""

    def step(ctx: DemoContext) -> list[Path]:
        import cips_stats as cs

        sim = ctx.require_sim()
        ctx.state.setdefault("sections", []).append(section)
        results = ctx.state.setdefault("results", {})
        raw = cs.report.compute(section, sim.data, seed=ctx.seed, n_boot=ctx.n_boot,
                                indicators=results.get("indicators"))
        results[section] = raw   # kept for the report step even if its tables below fail
        return cs.report.export(section, raw, ctx.out / "tables", data=sim.data, seed=ctx.seed)

    step.__name__ = f"_step_{section}"
    step.__doc__ = f"Compute the {section} section (``cs.report.compute``) and write its published tables."
    return step


def _step_report(ctx: DemoContext) -> list[Path]:
    import cips_stats as cs

    sim = ctx.require_sim()
    folder = ctx.out / "report"
    ran = ctx.state.get("sections")   # the sections of the analysis steps that ran (all when none did)
    sections = ("data", *ran) if ran else cs.report.SECTIONS
    rep = cs.report.build(sim.data, folder, seed=ctx.seed, n_boot=ctx.n_boot, truth=sim.truth,
                          results=ctx.state.get("results"), sections=sections)
    ctx.state["report"] = rep
    if rep.failures:
        raise RuntimeError("The report was written, but sections failed: "
                           + "; ".join(f"{k}: {v}" for k, v in rep.failures.items()))
    return [folder / f for f in rep.files]


def _step_analyze(ctx: DemoContext) -> list[Path]:
    """``cips-stats analyze`` on the files the demo wrote (support table from the truth), into ``analysis/``.

    The analysis reads the survey from its file, as a user's would: the synthetic survey's own tables
    (raw and loaded, ~150 MiB at 180 countries) are summarised and released first; its truth stays.
    """
    import dataclasses

    from . import pipeline

    sim = ctx.require_sim()
    _survey_summary(ctx)
    sim = ctx.sim = dataclasses.replace(sim, raw=None, data=None)
    support = ctx.out / "support.csv"
    sim.truth["supported"][["country", "factor", "supported"]].to_csv(support, index=False)
    out = ctx.out / "analysis"
    a = pipeline.analyze(ctx.state["raw_path"], instrument=ctx.out / "instrument.yaml", support=support,
                         out=out, seed=ctx.seed, n_boot=ctx.n_boot, truth=sim.truth, overwrite=True,
                         truth_simulate=_simulate_kwargs(ctx.seed, ctx.countries),
                         progress=ctx.state.get("progress"), change_options=ctx.state.get("change_options"),
                         n_jobs=ctx.state.get("n_jobs"),
                         command=f"cips-stats analyze {ctx.state['raw_path']} --instrument "
                                 f"{ctx.out / 'instrument.yaml'} --support {support} --out {out} --seed {ctx.seed}"
                                 f" --n-boot {ctx.n_boot}")
    ctx.state["analysis"] = a
    if not a.ok:
        failed = [f"{s['name']}: {s['error']}" for s in a.steps if not s["ok"]]
        failed += [f"{k}: {v}" for k, v in (a.report.failures if a.report is not None else {}).items()]
        raise RuntimeError("The analysis was written, but parts failed: " + "; ".join(failed))
    files = [support, out / "results.json", out / "summary.json"]
    return files + [out / "report" / f for f in a.report.files]


def _survey_summary(ctx: DemoContext) -> dict[str, Any]:
    """The synthetic survey in ``summary.json`` (computed once, kept in ``ctx.state``), counts through the gate."""
    if "survey" not in ctx.state:
        from . import disclosure
        from .pipeline import published_counts

        sim = ctx.require_sim()
        raw = sim.raw
        # counts as the publication gate allows (a withdrawn total minus the published cells would give
        # suppressed cells back); the exclusions go with the total (records read - excluded = total)
        counts = published_counts(disclosure.Gate.for_survey(sim.data))
        ctx.state["survey"] = {
            "raw_fingerprint": sim.fingerprint,
            "data_fingerprint": sim.data.fingerprint,
            "simulate_options": sim.options,
            "countries": int(raw["country"].nunique()),
            "respondents": counts["respondents_by_group"],
            "iterations": sorted(int(i) for i in raw["iteration"].unique()),
            "exclusions": None if counts["respondents"] is None else int(len(sim.data.exclusions)),
            "withheld": counts["withheld"],
        }
    return ctx.state["survey"]


#: The demo's steps, in order: (name, function(ctx) -> list of written paths).
DEMO_STEPS: list[tuple[str, Callable[[DemoContext], list[Path]]]] = [
    ("simulate", _step_simulate),
    ("validate", _step_validate),
    ("truth", _step_truth),
    ("analyze", _step_analyze),
]


def _machine() -> dict[str, Any]:
    import os

    import numpy
    import pandas

    return {"python": platform.python_version(), "numpy": numpy.__version__, "pandas": pandas.__version__,
            "platform": platform.platform(), "cpu_count": os.cpu_count()}


def run_demo(out: str | Path, *, seed: int | None = None, countries: int | None = None, n_boot: int = 1000,
             steps: list[tuple[str, Callable[[DemoContext], list[Path]]]] | None = None,
             console: Any = None, command: str | None = None,
             n_jobs: int | None = None) -> tuple[bool, dict[str, Any]]:
    """Run the demo steps and write ``summary.json``; return (all steps succeeded, summary).

    Parameters
    ----------
    out : str or Path
        Output folder (created); every file of the demo lands below it.
    seed : int or None
        Seed of the synthetic survey and of every bootstrap and sampler;
        ``None`` (the default) draws one, recorded in ``summary.json``
        (``cips-stats demo`` passes ``--seed``, default 1).
    countries : int, optional
        Countries of the synthetic survey (default: the published 25).
    n_boot : int
        Bootstrap replicates of the indicators.
    steps : list of (name, callable), optional
        The steps to run (default :data:`DEMO_STEPS`); each takes the
        :class:`DemoContext` and returns the files it wrote.
    console : rich.console.Console, False or None
        Where progress goes; ``False`` runs silently.
    command : str, optional
        The command line to record in ``summary.json``.
    n_jobs : int, optional
        Worker processes of the analysis (:func:`cips_stats.pipeline.analyze`).

    Returns
    -------
    ok : bool
        True when every step succeeded.
    summary : dict
        What ``summary.json`` holds: the steps with their seconds, files and
        errors, and the provenance.

    Examples
    --------
    >>> import tempfile
    >>> from cips_stats.cli import run_demo
    >>> from cips_stats.cli import DEMO_STEPS
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     ok, summary = run_demo(tmp, seed=2, countries=2, console=False, steps=DEMO_STEPS[:3])
    >>> ok, [s["name"] for s in summary["steps"]]
    (True, ['simulate', 'validate', 'truth'])
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from .results import Provenance, resolve_seed

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(out=out, seed=resolve_seed(seed), countries=countries, n_boot=n_boot)
    ctx.state["n_jobs"] = n_jobs
    steps = DEMO_STEPS if steps is None else steps
    quiet = console is False
    con = None if quiet else (console or _console())
    records = []
    progress = None if quiet else Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                           console=con, transient=True)
    if progress is not None:
        progress.start()
    try:
        for name, func in steps:
            task = None if progress is None else progress.add_task(f"demo: {name}", total=None)
            if progress is not None:
                ctx.state["progress"] = (lambda step, state, task=task, name=name:
                                         progress.update(task, description=f"demo: {name}: {step}"))
            t0 = time.perf_counter()
            try:
                files = [Path(p) for p in (func(ctx) or [])]
                rec = {"name": name, "ok": True, "seconds": time.perf_counter() - t0,
                       "files": [str(p.relative_to(out)) if p.is_relative_to(out) else str(p) for p in files]}
            except Exception as exc:  # a failing step is reported; the demo goes on and exits non-zero
                rec = {"name": name, "ok": False, "seconds": time.perf_counter() - t0,
                       "error": f"{type(exc).__name__}: {exc}", "files": []}
            records.append(rec)
            if progress is not None:
                progress.remove_task(task)
            if con is not None:
                mark = "[green]ok[/green]" if rec["ok"] else "[red]FAILED[/red]"
                extra = f"{len(rec['files'])} files" if rec["ok"] else rec["error"]
                con.print(f"{mark}  {name:<12} {rec['seconds']:6.2f} s  {extra}")
    finally:
        if progress is not None:
            progress.stop()
    sim = ctx.sim
    prov = Provenance.build("demo", instrument=None if sim is None else sim.instrument, seed=seed,
                            options={"countries": countries, "n_boot": n_boot, "steps": [n for n, _ in steps]},
                            data_fingerprint=ctx.state.get("data_fingerprint"))
    summary = {
        "kind": "DemoSummary",
        "package_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "ok": all(r["ok"] for r in records),
        "steps": records,
        "provenance": prov.to_dict(),
        "machine": _machine(),
        "command": command or f"run_demo({str(out)!r}, seed={seed}, countries={countries}, n_boot={n_boot})",
        "seconds": sum(r["seconds"] for r in records),
    }
    if sim is not None:
        summary["survey"] = _survey_summary(ctx)
    if ctx.state.get("analysis") is not None:
        summary["analysis"] = ctx.state["analysis"].summary   # the analysis steps and their times
    from .results import to_jsonable

    (out / "summary.json").write_text(json.dumps(to_jsonable(summary), indent=2), encoding="utf-8")
    if con is not None:
        con.print(f"Wrote {out / 'summary.json'}")
    return summary["ok"], summary


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="cips-stats")
def main() -> None:
    """cips-stats: statistics for the Customs Integrity Perception Survey.

    \b
    Exit status (every command):
      0  done; everything succeeded (reproduce: every number matched)
      1  done, but problems were found: a data problem (validate), an analysis
         step or report section that failed (analyze, demo, report), a number
         that did not reproduce (reproduce)
      2  usage or input error: bad option, unreadable file or instrument,
         missing column, bad support/targets/margins table
      3  the output could not be written (folder not ours without
         --overwrite, no permission, a file in the way)
    """


@main.command()
@click.option("--out", "out", default="demo-output", show_default=True, type=click.Path(file_okay=False),
              help="Output directory.")
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of the synthetic survey.")
@click.option("--countries", default=None, type=click.IntRange(min=1),
              help="Countries in iteration 1 (default 25, of which 17 repeated; otherwise ~68% repeated).")
@click.option("--n-boot", "n_boot", default=1000, show_default=True, type=click.IntRange(min=2),
              help="Bootstrap replicates of the indicators.")
@click.option("--jobs", "n_jobs", default=None, type=click.IntRange(min=1),
              help="Worker processes for the invariance ladders and the figures (default: the CPU cores, or 1 "
                   "on fewer than 4). The results are the same.")
def demo(out: str, seed: int, countries: int | None, n_boot: int, n_jobs: int | None) -> None:
    """Run the pipeline on a synthetic survey with known truth and write its outputs."""
    cmd = f"cips-stats demo --out {out} --seed {seed}" + ("" if countries is None else f" --countries {countries}")
    if n_boot != 1000:
        cmd += f" --n-boot {n_boot}"
    if n_jobs is not None:
        cmd += f" --jobs {n_jobs}"
    ok, _ = run_demo(out, seed=seed, countries=countries, n_boot=n_boot, command=cmd, n_jobs=n_jobs)
    if not ok:
        raise SystemExit(EXIT_PROBLEMS)


@main.command()
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output file; format by extension: .csv .xlsx .sav .dta .parquet.")
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--countries", default=None, type=click.IntRange(min=1),
              help="Countries in iteration 1 (default 25, of which 17 repeated).")
@click.option("--points", default=None, type=click.Choice(["4", "5"]), help="Points of the answer scale (default 5).")
def simulate(out: str, seed: int, countries: int | None, points: str | None) -> None:
    """Write a synthetic RAW respondent table (answer codes as collected)."""
    import cips_stats as cs
    from ._io import FORMATS

    path = Path(out)
    if path.suffix.lower() not in FORMATS:
        raise click.BadParameter(f"unknown extension {path.suffix!r}; use one of {', '.join(sorted(FORMATS))}.",
                                 param_hint="--out")
    con = _console()
    with con.status("Simulating the survey..."):
        sim = cs.simulate(**_simulate_kwargs(seed, countries, None if points is None else int(points)))
        path.parent.mkdir(parents=True, exist_ok=True)
        cs.data.write_raw(sim.raw, path, instrument=sim.instrument)
    n = sim.raw.groupby("group").size().to_dict()
    con.print(f"Wrote {path}: {len(sim.raw)} respondents {n}, {sim.raw['country'].nunique()} countries, "
              f"seed {seed} (raw fingerprint {sim.fingerprint}).")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--instrument", "instrument", default=None, type=click.Path(dir_okay=False),
              help="Instrument YAML (default: the packaged CIPS instrument).")
@input_options
def validate(file: str, instrument: str | None, inputs: dict[str, Any]) -> None:
    """Print the validation report of a survey FILE.

    Exit status 0 when it loads cleanly, 1 when it has data problems, 2 when it
    cannot be read at all (missing file, unknown format, undecodable bytes, missing
    key column, a mapped column not in the file, invalid instrument). The report
    ends with the fingerprint of the data that loads.
    """
    import cips_stats as cs

    con = _console()
    try:
        inst = cs.Instrument.from_yaml(instrument) if instrument else cs.Instrument.default()
        report = cs.data.validate(file, instrument=inst, **inputs)
    except cs.CipsError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(EXIT_UNREADABLE)
    con.print(report.to_text(), markup=False)
    if report.provenance.data_fingerprint:
        con.print(f"Data fingerprint (strict=False): {report.provenance.data_fingerprint}", markup=False)
    if not report.ok:
        rules = cs.data.RULES
        fatal = any(rules.get(p.rule, ("", "fatal", ""))[1] == "fatal" for p in report.problems)
        raise SystemExit(EXIT_UNREADABLE if fatal else EXIT_PROBLEMS)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--instrument", "instrument", default=None, type=click.Path(dir_okay=False),
              help="Instrument YAML (default: the packaged CIPS instrument).")
@click.option("--anonymise", is_flag=True, default=False,
              help="Replace country names by codes drawn from a secret key (never from --seed).")
@click.option("--anonymise-key", "anonymise_key", default=None, type=click.Path(dir_okay=False),
              help="Key file of the codes (implies --anonymise): read when it exists, else created at random "
                   "there; keep it private and outside --out. The same key gives the same codes next time.")
@click.option("--overwrite", is_flag=True, default=False,
              help="Write into a non-empty folder that cips-stats did not create.")
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of the bootstrap.")
@click.option("--n-boot", "n_boot", default=1000, show_default=True, type=click.IntRange(min=2),
              help="Bootstrap replicates of the indicators.")
@click.option("--min-cell", "min_cell", default=10, show_default=True, type=click.IntRange(min=5),
              help="Disclosure minimum (at least 5): cells and categories with fewer respondents are suppressed, "
                   "with complementary cells so that totals do not give them back.")
@click.option("--sections", default=None,
              help="Comma-separated sections (default all: data,reliability,cfa,invariance,indicators,gap,drift).")
@click.option("--invariance", "invariance", default="factor", show_default=True,
              type=click.Choice(["factor", "model"]), help="Invariance per key factor (fast) or of the full model.")
@input_options
def report(file: str, out: str, instrument: str | None, anonymise: bool, anonymise_key: str | None,
           overwrite: bool, seed: int, n_boot: int, min_cell: int,
           sections: str | None, invariance: str, inputs: dict[str, Any]) -> None:
    """Load a survey FILE and build its HTML report (index.html, CSV tables, report.json) in DIR.

    Exit status 0 when every section built, 1 when a section failed (the
    rest of the report is still written), 2 when the file cannot be read or
    has data problems (run ``cips-stats validate FILE`` for the details),
    3 when the output cannot be written (a non-empty folder cips-stats did
    not create without --overwrite, no permission, a file in the way).
    """
    import cips_stats as cs

    con = _console()
    try:
        inst = cs.Instrument.from_yaml(instrument) if instrument else cs.Instrument.default()
        data = cs.load(file, instrument=inst, **inputs)
    except cs.CipsError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(EXIT_UNREADABLE)
    secs = cs.report.SECTIONS if not sections else tuple(s.strip() for s in sections.split(",") if s.strip())
    from .output import OutputError

    key = _anonymise_key(anonymise_key, out) if anonymise_key else None
    try:
        with con.status("Building the report..."):
            rep = cs.report.build(data, out, seed=seed, n_boot=n_boot, anonymise=anonymise or key is not None,
                                  key=key, overwrite=overwrite, min_cell=min_cell, sections=secs,
                                  invariance=invariance)
    except OutputError as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(EXIT_OUTPUT)
    except OSError as exc:
        click.echo(f"Error: cannot write the report to {out!r}: {exc.strerror or exc}.", err=True)
        raise SystemExit(EXIT_OUTPUT)
    except ValueError as exc:
        if isinstance(exc, cs.CipsError):
            raise
        raise click.BadParameter(str(exc))
    for name, st in rep.sections.items():
        mark = "[green]ok[/green]" if st["ok"] else "[red]FAILED[/red]"
        con.print(f"{mark}  {name:<12} {st['seconds']:6.2f} s")
        if not st["ok"]:
            con.print(f"    {st['error']}", markup=False)        # already through the publication gate
    con.print(f"Wrote {rep.index}", markup=False)
    if not rep.ok:
        raise SystemExit(EXIT_PROBLEMS)


def _anonymise_key(path: str, out: str) -> str:
    """Read the key file, or create it at random; refuse one inside the output folder (it would be published)."""
    import cips_stats as cs

    p = Path(path)
    try:
        inside = p.resolve().is_relative_to(Path(out).resolve())
    except OSError:
        inside = False
    if inside:
        click.echo(f"Error: the key file {path!r} is inside the output folder {out!r}; keep the key outside "
                   "what you publish.", err=True)
        raise SystemExit(EXIT_OUTPUT)
    try:
        if p.exists():
            return cs.disclosure.read_key(p)
        key = cs.disclosure.write_key(p)
    except cs.CipsError as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(EXIT_OUTPUT)
    click.echo(f"Created the anonymisation key {path} (keep it private; reuse it for the same codes).", err=True)
    return key


# ------------------------------------------------------------------------------ analyze, claim, power, reproduce
def _progress_callback(enabled: bool):
    """A rich progress line for the analysis steps (None when disabled: not a terminal, or --json)."""
    if not enabled:
        return None, None
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    prog = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=_console(),
                    transient=True)
    task = prog.add_task("analysis", total=None)
    return prog, (lambda step, state: prog.update(task, description=f"{step} ({state})"))


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, str], None] | None]:
    """The progress line of a long command while its body runs (the callback is None when disabled)."""
    prog, callback = _progress_callback(enabled)
    if prog is not None:
        prog.start()
    try:
        yield callback
    finally:
        if prog is not None:
            prog.stop()


def _input_error(exc: Exception, problem: Callable[[Any], str]) -> NoReturn:
    """Say what input could not be used (the error and its first ten problems) and exit with status 2."""
    text = str(exc)
    click.echo(f"Error: {text}", err=True)
    for p in getattr(exc, "problems", ())[:10]:
        if str(getattr(p, "message", "")) not in text:      # not said already in the error's own words
            click.echo(f"  {problem(p)}", err=True)
    raise SystemExit(EXIT_UNREADABLE)


def _computed(func: Callable[[], Any], as_json: bool) -> Any:
    """``func()``'s result; a CipsError exits with status 2; with ``as_json`` the result is printed (None returned)."""
    import cips_stats as cs

    try:
        r = func()
    except cs.CipsError as exc:
        _input_error(exc, lambda p: f"{getattr(p, 'column', '')}: {getattr(p, 'message', p)}")
    if as_json:
        _echo_json(r.to_dict())
        return None
    return r


def _echo_json(obj: Any) -> None:
    from .results import to_jsonable

    click.echo(json.dumps(to_jsonable(obj), indent=1, default=str))


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--instrument", "instrument", default=None, type=click.Path(dir_okay=False),
              help="Instrument YAML (default: the packaged CIPS instrument).")
@click.option("--support", default=None, type=click.Path(dir_okay=False),
              help="Support table CSV (country, factor, supported): change model and claim audit.")
@click.option("--margins", default=None, type=click.Path(dir_okay=False),
              help="Population margins CSV (variable, category, total or share): weights raked first.")
@click.option("--targets", default=None, type=click.Path(dir_okay=False),
              help="KPI targets CSV (factor, group, target): probability of meeting each target.")
@click.option("--out", "out", default="analysis", show_default=True, type=click.Path(file_okay=False),
              help="Output folder (report/, results.json, summary.json).")
@click.option("--anonymise", is_flag=True, default=False, help="Replace country names by codes.")
@click.option("--anonymise-key", "anonymise_key", default=None, type=click.Path(dir_okay=False),
              help="Key file of the codes (implies --anonymise; created when missing; keep it outside --out). "
                   "Needed by `reproduce` to re-create the same codes.")
@click.option("--overwrite", is_flag=True, default=False,
              help="Write into a non-empty folder that cips-stats did not create.")
@click.option("--min-cell", "min_cell", default=10, show_default=True, type=click.IntRange(min=5),
              help="Disclosure minimum (at least 5).")
@click.option("--seed", default=None, type=int, help="Seed of every random step (default: drawn and recorded).")
@click.option("--title", default=None, help="Report title (default: from the instrument's name).")
@click.option("--estimator", default="auto", show_default=True,
              type=click.Choice(["auto", "ML", "MLR", "WLSMV"], case_sensitive=False),
              help="CFA and invariance estimator; auto: WLSMV (ordinal) for items on a point scale.")
@click.option("--n-boot", "n_boot", default=1000, show_default=True, type=click.IntRange(min=2),
              help="Bootstrap replicates of the indicators.")
@click.option("--draws", default=None, type=click.IntRange(min=50),
              help="Posterior draws (and tuning steps) per chain of the change model (default 1000).")
@click.option("--chains", default=None, type=click.IntRange(min=1), help="Chains of the change model (default 4).")
@click.option("--sampler", default=None, type=click.Choice(["nutpie", "pymc", "numpyro"]),
              help="NUTS implementation of the change model (default nutpie).")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the machine-readable summary.")
@click.option("--jobs", "n_jobs", default=None, type=click.IntRange(min=1),
              help="Worker processes for the invariance ladders and the figures (default: the CPU cores, or 1 "
                   "on fewer than 4). The results are the same.")
@click.option("--steps", default=None,
              help="Comma-separated analysis steps to run (default all: weighting, reliability, cfa, invariance, "
                   "indicators, gap, drift, change, claims, kpi, review); load and report always run.")
@input_options
def analyze(file: str, instrument: str | None, support: str | None, margins: str | None, targets: str | None,
            out: str, anonymise: bool, anonymise_key: str | None, overwrite: bool, min_cell: int,
            seed: int | None, title: str | None, estimator: str, n_boot: int, draws: int | None,
            chains: int | None, sampler: str | None, as_json: bool, n_jobs: int | None, steps: str | None,
            inputs: dict[str, Any]) -> None:
    """Analyse a survey FILE end to end and write its report.

    Load and validate, (rake to --margins), reliability, CFA, invariance,
    indicators, perception gap, composition drift, change (with --support:
    the hierarchical model), claim audit (with --support), KPI view (with
    --targets), instrument review, report.  Each step is timed; a step that
    fails is shown in its section with the reason and the exit status is 1.
    Writes DIR/report/ (index.html, tables/*.csv, tables.xlsx, report.json),
    DIR/results.json (what `cips-stats reproduce DIR` needs) and
    DIR/summary.json.
    """
    import cips_stats as cs
    from . import pipeline
    from .output import OutputError

    key_file = None
    if anonymise_key:
        _anonymise_key(anonymise_key, out)
        key_file = anonymise_key
    import shlex
    import sys

    cmd = "cips-stats " + shlex.join(sys.argv[1:]) if Path(sys.argv[0]).name == "cips-stats" else None
    try:
        with _progress(not as_json and _isatty()) as callback:
            a = pipeline.analyze(file, instrument=instrument, support=support, margins=margins, targets=targets,
                                 out=out, anonymise=anonymise or key_file is not None, key_file=key_file,
                                 min_cell=min_cell, seed=seed, title=title, estimator=estimator.upper()
                                 if estimator.lower() != "auto" else "auto", n_boot=n_boot,
                                 load_options=inputs, overwrite=overwrite, progress=callback, command=cmd,
                                 n_jobs=n_jobs, steps=None if steps is None else
                                 [x.strip() for x in steps.split(",") if x.strip()],
                                 change_options={**({} if draws is None else {"draws": draws, "tune": draws}),
                                                 **({} if chains is None else {"chains": chains}),
                                                 **({} if sampler is None else {"sampler": sampler})})
    except OutputError as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(EXIT_OUTPUT)
    except cs.CipsError as exc:
        _input_error(exc, lambda p: f"{getattr(p, 'message', p)} {getattr(p, 'file', '') or ''}")
    if as_json:
        _echo_json(a.summary)
    else:
        con = _console()
        for st in a.summary["steps"]:
            mark = "[green]ok[/green]" if st["ok"] else "[red]FAILED[/red]"
            con.print(f"{mark}  {st['name']:<12} {st['seconds']:6.2f} s")
            if not st["ok"]:
                con.print(f"    {st['error']}", markup=False)
        for name, msg in a.summary["failures"].items():
            con.print(f"[red]section failed[/red]  {name}: ", end="")
            con.print(msg, markup=False)
        con.print(f"Wrote {a.summary['report']} ({a.summary['seconds']:.1f} s)", markup=False)
    if not a.ok:
        raise SystemExit(EXIT_PROBLEMS)


def _isatty() -> bool:
    import sys

    return sys.stderr.isatty() and sys.stdout.isatty()


@main.command()
@click.option("--supported-improved", "si", required=True, type=click.IntRange(min=0),
              help="Supported cells (country x key factor) that improved.")
@click.option("--supported-total", "st", required=True, type=click.IntRange(min=0), help="All supported cells.")
@click.option("--unsupported-improved", "ui", required=True, type=click.IntRange(min=0),
              help="Unsupported cells that improved.")
@click.option("--unsupported-total", "ut", required=True, type=click.IntRange(min=0), help="All unsupported cells.")
@click.option("--countries", default=None, type=click.IntRange(min=1),
              help="Countries the cells come from (enables the intra-country correlation adjustment).")
@click.option("--icc", default=None, type=float, help="Assumed intra-country correlation in [0, 1).")
@click.option("--significance", default=0.05, show_default=True, type=float, help="Test level.")
@click.option("--label", default="", help="Name of the comparison in the verdict (e.g. officials).")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print every number as JSON.")
def claim(si: int, st: int, ui: int, ut: int, countries: int | None, icc: float | None, significance: float,
          label: str, as_json: bool) -> None:
    """Audit a published claim from its counts alone (cs.claims.from_aggregates) and print the verdict.

    Example: cips-stats claim --supported-improved 68 --supported-total 80
    --unsupported-improved 66 --unsupported-total 90 --countries 17
    """
    import cips_stats as cs

    try:
        r = cs.claims.from_aggregates(supported_improved=si, supported_total=st, unsupported_improved=ui,
                                      unsupported_total=ut, n_countries=countries, icc=icc,
                                      significance=significance, label=label)
    except cs.CipsError as exc:
        _input_error(exc, lambda p: f"{getattr(p, 'column', '')}: {getattr(p, 'message', p)}")
    if as_json:
        _echo_json(r.to_dict())
        return
    con = _console()
    con.print(r.verdict, markup=False)
    if len(r.sensitivity):
        con.print("\nSensitivity to the intra-country correlation:", markup=False)
        con.print(r.sensitivity[["icc", "z", "p_value", "ci_low", "ci_high", "significant"]].to_string(
            index=False, float_format=lambda v: f"{v:.3f}"), markup=False)


@main.group()
def power() -> None:
    """Plan a survey: sample size for a margin of error, minimum detectable change."""


@power.command("sample-size")
@click.option("--margin", required=True, type=float, help="Half-width of the interval of a proportion (0.05 = ±5).")
@click.option("--ci", default=0.95, show_default=True, type=float, help="Confidence level.")
@click.option("--population", default=None, type=click.IntRange(min=1), help="Finite population size N.")
@click.option("--deff", default=1.0, show_default=True, type=float, help="Design effect.")
@click.option("--p", "p", default=0.5, show_default=True, type=float, help="Anticipated proportion.")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print every number as JSON.")
def power_sample_size(margin: float, ci: float, population: int | None, deff: float, p: float,
                      as_json: bool) -> None:
    """Respondents needed for a proportion's interval of half-width --margin (cs.power.sample_size)."""
    import cips_stats as cs

    r = _computed(lambda: cs.power.sample_size(margin=margin, ci=ci, population=population, deff=deff, p=p),
                  as_json)
    if r is None:
        return
    click.echo(f"n = {int(r)} respondents (±{margin:g} at {ci:.0%}, deff {deff:g}"
               + (f", population {population}" if population else "") + f"; n0 = {r.n0:.2f}; {r.formula})")


@power.command("mde")
@click.option("--n", "n", required=True, type=click.IntRange(min=2), help="Respondents per cell in each iteration.")
@click.option("--n2", "n2", default=None, type=click.IntRange(min=2), help="Respondents in the second iteration.")
@click.option("--sd", required=True, type=float, help="Respondent-level SD of the score (about 2 on 0-10).")
@click.option("--deff", default=1.0, show_default=True, type=float, help="Design effect.")
@click.option("--significance", default=0.05, show_default=True, type=float, help="Two-sided test level.")
@click.option("--power", "power_", default=0.8, show_default=True, type=float, help="Power.")
@click.option("--population", default=None, type=click.IntRange(min=1), help="Finite population per cell.")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print every number as JSON.")
def power_mde(n: int, n2: int | None, sd: float, deff: float, significance: float, power_: float,
              population: int | None, as_json: bool) -> None:
    """Minimum detectable change of an indicator between two iterations (cs.power.mde)."""
    import cips_stats as cs

    r = _computed(lambda: cs.power.mde(n if n2 is None else (n, n2), sd=sd, deff=deff, significance=significance,
                                       power=power_, population=population), as_json)
    if r is None:
        return
    click.echo(f"Minimum detectable change: {r.mde:.3f} (n = {n}" + ("" if n2 is None else f" and {n2}")
               + f", sd {sd:g}, deff {deff:g}, {significance:g} two-sided, power {power_:g})")


@main.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--rtol", default=None, type=float, help="Relative tolerance of numbers (default 1e-7).")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the comparison as JSON.")
def reproduce(folder: str, rtol: float | None, as_json: bool) -> None:
    """Re-run the analysis in FOLDER from its results.json and compare every published number.

    Exit status 0 when every number matches, 1 when some differ (each is
    listed), 2 when the folder or an input file is missing or changed.
    """
    import cips_stats as cs
    from . import pipeline

    try:
        with _progress(not as_json and _isatty()) as callback:
            r = pipeline.reproduce(folder, progress=callback, **({} if rtol is None else {"rtol": rtol}))
    except cs.CipsError as exc:
        _input_error(exc, lambda p: f"{getattr(p, 'message', p)} {getattr(p, 'file', '') or ''}")
    if as_json:
        _echo_json({"ok": r.ok, "compared": r.compared, "matched": r.matched, "tables": r.tables, "rtol": r.rtol,
                    "mismatches": r.mismatches.to_dict("records")})
    else:
        con = _console()
        if r.ok:
            con.print(f"All {r.compared} numbers and labels in {r.tables} tables match (rtol {r.rtol:g}).",
                      markup=False)
        else:
            con.print(f"{r.compared - r.matched} of {r.compared} values differ (rtol {r.rtol:g}):", markup=False)
            con.print(r.mismatches.head(30).to_string(index=False), markup=False)
    if not r.ok:
        raise SystemExit(EXIT_PROBLEMS)



if __name__ == "__main__":  # pragma: no cover
    main()
