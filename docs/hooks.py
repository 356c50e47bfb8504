"""MkDocs hooks of the documentation site (named in mkdocs.yml; run by ``mkdocs build`` itself).

At build time, from the files of the repository (nothing is copied or linked by hand, so a fresh clone
builds):

* ``methodology/*.md`` become the pages ``methodology/...`` of the site;
* every public module gets an API reference page ``reference/<module>.md`` holding a mkdocstrings
  directive (its numpydoc docstrings, rendered);
* ``validation.md`` and ``benchmarks.md`` are tables rendered from ``validation/results`` and
  ``benchmarks/results``;
* the navigation gains a Methodology and an API reference section listing those pages.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: Public modules with one reference page each (title, module).
MODULES = [
    ("Top level (cs)", "cips_stats"),
    ("instrument", "cips_stats.instrument"),
    ("data", "cips_stats.data"),
    ("simulate", "cips_stats.simulate"),
    ("reliability", "cips_stats.reliability"),
    ("factor", "cips_stats.factor"),
    ("weighting", "cips_stats.weighting"),
    ("estimate", "cips_stats.estimate"),
    ("scores", "cips_stats.scores"),
    ("change", "cips_stats.change"),
    ("claims", "cips_stats.claims"),
    ("power", "cips_stats.power"),
    ("disclosure", "cips_stats.disclosure"),
    ("plotting", "cips_stats.plotting"),
    ("report", "cips_stats.report"),
    ("results", "cips_stats.results"),
    ("errors", "cips_stats.errors"),
    ("thresholds", "cips_stats.thresholds"),
]

#: The faces of ``import cips_stats as cs`` (its ``__all__`` is built at import time, which a static
#: reader cannot follow, so the top-level page names them).
TOP_LEVEL = ["cips_stats.data.load", "cips_stats.simulate.simulate", "cips_stats.instrument.Instrument",
             "cips_stats.data.SurveyData", "cips_stats.errors.CipsError", "cips_stats.errors.DataError",
             "cips_stats.errors.ModelError", "cips_stats.errors.CipsWarning"]

_MAX_ROWS = 60


# ------------------------------------------------------------------------------------------ pages
def _methodology_pages() -> list[Path]:
    folder = ROOT / "methodology"
    pages = sorted(folder.glob("*.md"))
    return sorted(pages, key=lambda p: (p.name != "README.md", p.name))


def _title(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem.replace("-", " ").capitalize()


def _modules() -> list[tuple[str, str]]:
    """The listed modules that exist, then every other public module of the package (found on disk)."""
    listed = [(t, m) for t, m in MODULES if _module_exists(m)]
    known = {m for _, m in MODULES}
    pkg = ROOT / "cips_stats"
    found = sorted({p.stem for p in pkg.glob("*.py")} | {p.parent.name for p in pkg.glob("*/__init__.py")})
    extra = [(name, f"cips_stats.{name}") for name in found
             if not name.startswith("_") and f"cips_stats.{name}" not in known]
    return listed + extra


def _module_exists(module: str) -> bool:
    rel = Path(*module.split("."))
    return (ROOT / rel).with_suffix(".py").exists() or (ROOT / rel / "__init__.py").exists()


def _reference_page(title: str, module: str) -> str:
    if module == "cips_stats":
        rows = "\n".join(f"| [`{name.rsplit('.', 1)[1]}`][{name}] | `{name.rsplit('.', 1)[0]}` |" for name in TOP_LEVEL)
        mods = ", ".join(f"[`{m.split('.', 1)[1]}`]({m}.md)" for _, m in _modules() if m != "cips_stats")
        return (f"# {title}\n\n`import cips_stats as cs` gives these names, documented on their modules' pages, "
                f"and the modules themselves (`cs.reliability`, `cs.estimate`...), loaded when first used.\n\n"
                f"| name | documented in |\n|---|---|\n{rows}\n\nModules: {mods}.\n")
    text = f"# `{module}`\n\n::: {module}\n    options:\n      show_root_heading: false\n"
    shadowed = _shadowed(module)
    if shadowed:
        # A public function named like its own submodule (``estimate.indicators``): a static reader sees
        # the submodule there, so the function is rendered from where it is defined.
        text += "\n## Functions named like their submodule\n"
        for name in shadowed:
            text += (f"\n::: {module}.{name}.{name}\n    options:\n      show_root_full_path: false\n"
                     f"      heading_level: 3\n")
    return text


def _shadowed(module: str) -> list[str]:
    """Names of ``module.__all__`` that are also submodule files of the package."""
    import ast

    pkg = ROOT / Path(*module.split("."))
    init = pkg / "__init__.py"
    if not init.exists():
        return []
    names: list[str] = []
    for node in ast.walk(ast.parse(init.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            try:
                names = [str(v) for v in ast.literal_eval(node.value)]
            except ValueError:
                names = []
    out = []
    for name in names:
        sub = pkg / f"{name}.py"
        if sub.exists() and re.search(rf"^(def|class) {re.escape(name)}\b", sub.read_text(encoding="utf-8"), re.M):
            out.append(name)
    return out


# ----------------------------------------------------------------------------------------- tables
def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if not math.isfinite(v):
            return ""
        if v == 0 or 1e-3 <= abs(v) < 1e6:
            return f"{v:.4g}"
        return f"{v:.3e}"
    if isinstance(v, (list, dict)):
        s = json.dumps(v, default=str)
        return s if len(s) <= 60 else s[:57] + "..."
    s = str(v)
    try:
        return _fmt(float(s)) if re.fullmatch(r"-?\d+\.\d+(e-?\d+)?", s) else s
    except ValueError:
        return s


def _cell(v: Any) -> str:
    return _fmt(v).replace("|", "\\|").replace("\n", " ")


def _md_table(rows: list[dict], max_rows: int = _MAX_ROWS) -> str:
    if not rows:
        return "_(no rows)_\n"
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    out = ["| " + " | ".join(_cell(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows[:max_rows]:
        out.append("| " + " | ".join(_cell(r.get(c)) for c in cols) + " |")
    text = "\n".join(out) + "\n"
    if len(rows) > max_rows:
        text += f"\n_{len(rows) - max_rows} more rows in the file._\n"
    return text


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj):
        out.append((prefix, f"{len(obj)} rows"))
    else:
        out.append((prefix, obj))
    return out


def _records(doc: Any) -> list[dict] | None:
    """The list of row dictionaries of a result file, where it has one."""
    if isinstance(doc, list) and doc and all(isinstance(x, dict) for x in doc):
        return doc
    if isinstance(doc, dict):
        for key in ("rows", "result", "results", "table"):
            v = doc.get(key)
            if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
                return v
    return None


def _header(doc: dict) -> str:
    keep = []
    for key in ("study", "name", "quick", "seconds", "n_sim", "note", "measured"):
        if key in doc and not isinstance(doc[key], (dict, list)):
            keep.append(f"**{key}**: {_cell(doc[key])}")
    machine = doc.get("machine")
    if isinstance(machine, dict):
        said = ", ".join(f"{k} {_cell(machine[k])}" for k in ("date", "cpu_count", "python") if k in machine)
        if said:
            keep.append(f"**machine**: {said}")
    return " · ".join(keep) + "\n\n" if keep else ""


def _validation_page() -> str:
    folder = ROOT / "validation" / "results"
    parts = ["# Validation\n",
             "Simulation studies against known truth and comparisons with published values, as stored in "
             "`validation/results/` by `python -m validation` (each study is a `validation/study_*.py`). "
             "Reference values from R are stored with their calls and versions in `tests/reference/` and "
             "checked by the test suite. This page is rebuilt from those files every time the site is built.\n"]
    stems = sorted({p.stem for p in folder.glob("*.csv")} | {p.stem for p in folder.glob("*.json")} - {"index"})
    if not stems:
        parts.append("_No validation results are stored yet._\n")
    for stem in stems:
        parts.append(f"\n## {stem.replace('_', ' ').capitalize()}\n")
        js, cs_ = folder / f"{stem}.json", folder / f"{stem}.csv"
        doc = None
        if js.exists():
            try:
                doc = json.loads(js.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                parts.append(f"_`{js.name}` could not be read: {exc}_\n")
        if isinstance(doc, dict):
            parts.append(_header(doc))
        rows = None
        if cs_.exists():
            with cs_.open(encoding="utf-8-sig", newline="") as fh:
                rows = list(csv.DictReader(fh))
        if not rows and doc is not None:
            rows = _records(doc)
        if rows:
            parts.append(_md_table(rows))
        elif isinstance(doc, dict):
            parts.append(_md_table([{"quantity": k, "value": v} for k, v in _flatten(doc)]))
        parts.append(f"\nFiles: {', '.join(f'`validation/results/{p.name}`' for p in (js, cs_) if p.exists())}.\n")
    return "\n".join(parts)


def _benchmarks_page() -> str:
    folder = ROOT / "benchmarks" / "results"
    parts = ["# Benchmarks\n",
             "Speed and memory of the package as a user calls it, against fair baselines measured in the same run "
             "(`python -m benchmarks`; each benchmark is a `benchmarks/bench_*.py`), on the 2-core machine "
             "named in each file. This page is rebuilt from `benchmarks/results/` every time the site is built.\n"]
    files = sorted(p for p in folder.glob("*.json") if p.stem != "index")
    if not files:
        parts.append("_No benchmark results are stored yet._\n")
    for p in files:
        parts.append(f"\n## {p.stem.replace('_', ' ').capitalize()}\n")
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            parts.append(f"_`{p.name}` could not be read: {exc}_\n")
            continue
        if isinstance(doc, dict):
            parts.append(_header(doc))
            body = doc.get("result", doc)
        else:
            body = doc
        rows = _records(body) if not isinstance(body, list) else body
        if rows and all(isinstance(r, dict) for r in rows):
            parts.append(_md_table(rows))
        else:
            flat = [{"quantity": k, "value": v} for k, v in _flatten(body)
                    if k not in ("machine", "name", "quick", "measured")]
            parts.append(_md_table(flat, max_rows=120))
        parts.append(f"\nFile: `benchmarks/results/{p.name}`.\n")
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------ hooks
def on_config(config, **kwargs):
    """Add the Methodology and API reference sections to the navigation."""
    nav = list(config.nav or [])
    methodology = []
    for p in _methodology_pages():
        uri = f"methodology/{p.name}"
        methodology.append({("Overview" if p.name == "README.md" else _title(p)): uri})
    reference = [{title: f"reference/{module}.md"} for title, module in _modules()]
    at = next((i for i, item in enumerate(nav) if isinstance(item, dict) and "User guide" in item), len(nav) - 1)
    nav[at + 1:at + 1] = [{"Methodology": methodology}, {"API reference": reference}]
    config.nav = nav
    return config


def on_files(files, config, **kwargs):
    """Generate the methodology, reference, validation and benchmark pages."""
    from mkdocs.structure.files import File

    def add(uri: str, content: str) -> None:
        existing = files.get_file_from_path(uri)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, uri, content=content))

    for p in _methodology_pages():
        add(f"methodology/{p.name}", p.read_text(encoding="utf-8"))
    for title, module in _modules():
        add(f"reference/{module}.md", _reference_page(title, module))
    add("validation.md", _validation_page())
    add("benchmarks.md", _benchmarks_page())
    return files


_OUT_LINK = re.compile(r"\]\(\.\./methodology/")


def on_page_markdown(markdown, page, config, files, **kwargs):
    """Links written for browsing the repository (``../methodology/x.md``) point at the site's pages."""
    if page.file.src_uri.count("/") == 0:
        return _OUT_LINK.sub("](methodology/", markdown)
    if page.file.src_uri.startswith("how-to/"):
        return _OUT_LINK.sub("](../methodology/", markdown)
    return markdown
