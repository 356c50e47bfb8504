"""The documentation site's build hooks (docs/hooks.py): every methodology page, every public module's
reference page and the result tables are generated from the repository.  CI also runs
``mkdocs build --strict`` (.ci/run)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
hooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hooks)

#: The public modules the site must document (issue 11).
PUBLIC = ("instrument", "data", "simulate", "reliability", "factor", "weighting", "estimate", "scores", "change",
          "claims", "power", "disclosure", "plotting", "report")


class _Config(dict):
    @property
    def nav(self):
        return self["nav"]

    @nav.setter
    def nav(self, value):
        self["nav"] = value


def _mkdocs_yml() -> dict:
    class _Loader(yaml.SafeLoader):
        pass

    _Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)
    return yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_Loader)


def test_navigation_lists_every_page_the_hooks_generate():
    cfg = _mkdocs_yml()
    assert cfg["docs_dir"] == "docs" and cfg["strict"] is True and "docs/hooks.py" in cfg["hooks"]
    nav = hooks.on_config(_Config(nav=cfg["nav"])).nav
    flat = {}
    for item in nav:
        (title, value), = item.items()
        flat[title] = value
    methodology = [next(iter(d.values())) for d in flat["Methodology"]]
    assert methodology == [f"methodology/{p.name}" for p in hooks._methodology_pages()]
    assert {p.name for p in (ROOT / "methodology").glob("*.md")} == {m.split("/")[1] for m in methodology}
    reference = [next(iter(d.values())) for d in flat["API reference"]]
    for mod in PUBLIC:
        assert f"reference/cips_stats.{mod}.md" in reference, mod
    for page in ("index.md", "tutorial.md", "user-guide.md"):
        assert (ROOT / "docs" / page).exists()
    for how in flat["How-to"]:
        assert (ROOT / "docs" / next(iter(how.values()))).exists()


def test_reference_pages_render_functions_named_like_their_submodule():
    assert "indicators" in hooks._shadowed("cips_stats.estimate")
    page = hooks._reference_page("estimate", "cips_stats.estimate")
    assert "::: cips_stats.estimate\n" in page and "::: cips_stats.estimate.indicators.indicators" in page
    assert {"cfa", "invariance"} <= set(hooks._shadowed("cips_stats.factor"))
    top = hooks._reference_page("Top level (cs)", "cips_stats")
    assert "[`load`][cips_stats.data.load]" in top and ":::" not in top     # linked, not rendered twice


def test_result_tables_come_from_the_stored_results():
    val = hooks._validation_page()
    for p in (ROOT / "validation" / "results").glob("*.csv"):
        assert f"`validation/results/{p.name}`" in val
    bench = hooks._benchmarks_page()
    for p in (ROOT / "benchmarks" / "results").glob("*.json"):
        if p.stem != "index":
            assert f"`benchmarks/results/{p.name}`" in bench
    assert hooks._md_table([{"a": 1.23456789, "b": "x|y"}]) == "| a | b |\n|---|---|\n| 1.235 | x\\|y |\n"
    assert "more rows" in hooks._md_table([{"a": i} for i in range(100)], max_rows=10)
