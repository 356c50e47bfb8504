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

import datetime as _dt
import functools
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import click

from . import __version__

__all__ = ["main", "DemoContext", "DEMO_STEPS", "run_demo", "input_options"]

#: Exit status: data problems found (validate) or a demo step failed.
EXIT_PROBLEMS = 1
#: Exit status: the input could not be read at all (bad file, bad instrument).
EXIT_UNREADABLE = 2


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

    ctx.sim = cs.simulate(**_simulate_kwargs(ctx.seed, ctx.countries))
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


#: The demo's steps, in order: (name, function(ctx) -> list of written paths).
DEMO_STEPS: list[tuple[str, Callable[[DemoContext], list[Path]]]] = [
    ("simulate", _step_simulate),
    ("validate", _step_validate),
    ("truth", _step_truth),
    ("reliability", _analysis_step("reliability")),
    ("indicators", _analysis_step("indicators")),
    ("gap", _analysis_step("gap")),
    ("cfa", _analysis_step("cfa")),
    ("invariance", _analysis_step("invariance")),
    ("drift", _analysis_step("drift")),
    ("report", _step_report),
]


def _machine() -> dict[str, Any]:
    import os

    import numpy
    import pandas

    return {"python": platform.python_version(), "numpy": numpy.__version__, "pandas": pandas.__version__,
            "platform": platform.platform(), "cpu_count": os.cpu_count()}


def run_demo(out: str | Path, *, seed: int = 1, countries: int | None = None, n_boot: int = 1000,
             steps: list[tuple[str, Callable[[DemoContext], list[Path]]]] | None = None,
             console: Any = None, command: str | None = None) -> tuple[bool, dict[str, Any]]:
    """Run the demo steps and write ``summary.json``; return (all steps succeeded, summary).

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

    from .results import Provenance

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(out=out, seed=seed, countries=countries, n_boot=n_boot)
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
        raw = sim.raw
        summary["survey"] = {
            "raw_fingerprint": sim.fingerprint,
            "data_fingerprint": sim.data.fingerprint,
            "simulate_options": sim.options,
            "countries": int(raw["country"].nunique()),
            "respondents": {str(k): int(v) for k, v in raw.groupby("group").size().items()},
            "iterations": sorted(int(i) for i in raw["iteration"].unique()),
            "exclusions": int(len(sim.data.exclusions)),
        }
    from .results import to_jsonable

    (out / "summary.json").write_text(json.dumps(to_jsonable(summary), indent=2), encoding="utf-8")
    if con is not None:
        con.print(f"Wrote {out / 'summary.json'}")
    return summary["ok"], summary


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="cips-stats")
def main() -> None:
    """cips-stats: statistics for the Customs Integrity Perception Survey."""


@main.command()
@click.option("--out", "out", default="demo-output", show_default=True, type=click.Path(file_okay=False),
              help="Output directory.")
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of the synthetic survey.")
@click.option("--countries", default=None, type=click.IntRange(min=1),
              help="Countries in iteration 1 (default 25, of which 17 repeated; otherwise ~68% repeated).")
@click.option("--n-boot", "n_boot", default=1000, show_default=True, type=click.IntRange(min=2),
              help="Bootstrap replicates of the indicators.")
def demo(out: str, seed: int, countries: int | None, n_boot: int) -> None:
    """Run the pipeline on a synthetic survey with known truth and write its outputs."""
    cmd = f"cips-stats demo --out {out} --seed {seed}" + ("" if countries is None else f" --countries {countries}")
    if n_boot != 1000:
        cmd += f" --n-boot {n_boot}"
    ok, _ = run_demo(out, seed=seed, countries=countries, n_boot=n_boot, command=cmd)
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
@click.option("--anonymise", is_flag=True, default=False, help="Replace country names by anonymous labels.")
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of the bootstrap and of the labels.")
@click.option("--n-boot", "n_boot", default=1000, show_default=True, type=click.IntRange(min=2),
              help="Bootstrap replicates of the indicators.")
@click.option("--min-cell", "min_cell", default=10, show_default=True, type=click.IntRange(min=1),
              help="Disclosure minimum: cells with fewer respondents are suppressed.")
@click.option("--sections", default=None,
              help="Comma-separated sections (default all: data,reliability,cfa,invariance,indicators,gap,drift).")
@click.option("--invariance", "invariance", default="factor", show_default=True,
              type=click.Choice(["factor", "model"]), help="Invariance per key factor (fast) or of the full model.")
@input_options
def report(file: str, out: str, instrument: str | None, anonymise: bool, seed: int, n_boot: int, min_cell: int,
           sections: str | None, invariance: str, inputs: dict[str, Any]) -> None:
    """Load a survey FILE and build its HTML report (index.html, CSV tables, report.json) in DIR.

    Exit status 0 when every section built, 1 when a section failed (the
    rest of the report is still written), 2 when the file cannot be read or
    has data problems (run ``cips-stats validate FILE`` for the details).
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
    try:
        with con.status("Building the report..."):
            rep = cs.report.build(data, out, seed=seed, n_boot=n_boot, anonymise=anonymise, min_cell=min_cell,
                                  sections=secs, invariance=invariance)
    except ValueError as exc:
        if isinstance(exc, cs.CipsError):
            raise
        raise click.BadParameter(str(exc))
    for name, st in rep.sections.items():
        mark = "[green]ok[/green]" if st["ok"] else "[red]FAILED[/red]"
        con.print(f"{mark}  {name:<12} {st['seconds']:6.2f} s" + ("" if st["ok"] else f"  {st['error']}"))
    con.print(f"Wrote {rep.index}")
    if not rep.ok:
        raise SystemExit(EXIT_PROBLEMS)


if __name__ == "__main__":  # pragma: no cover
    main()
