"""The report template and its filters on their own: variables kept, warnings as sentences, escaping."""

from __future__ import annotations

import jinja2
import pytest

from cips_stats.errors import Flag
from cips_stats.report import _filters

HEADER = {"respondents": 10, "countries": 1, "iterations": "1", "groups": "a, b", "minimum cell size": 10}
WARN = [{"section": "reliability", "severity": "error", "code": "section_failed", "message": "did not converge",
         "where": ""},
        {"section": "indicators", "severity": "caution", "code": "cv_caution",
         "message": "Use with caution: CV between 16.6% and 33.3%.", "where": "12 cells"},
        {"section": "data", "severity": "warning", "code": "x", "message": "<script>alert(1)</script>",
         "where": "country <img src=x onerror=alert(1)>"}]


def _context(**extra):
    sec = {"name": "reliability", "title": "Reliability", "ok": False, "error": "boom <b>", "note": "",
           "paragraphs": ["p <i>1</i>"], "headline": "", "seconds": 0.5,
           "tables": [{"caption": "cap", "collapsed": False, "rows": 1, "file": "tables/x.csv",
                       "html": "<table class='t'><tr><td>1</td></tr></table>"}],
           "figures": [{"caption": "fig <b>", "b64": "AAAA"}]}
    ctx = dict(title="T <b>", header=HEADER, sections=[sec], failures={"reliability": "boom"}, methods=[],
               warnings_html="<table class='t' data-table='warnings'></table>", n_warnings=len(WARN), css="body{}")
    ctx.update(extra)
    return ctx


def _plain_env():
    return jinja2.Environment(loader=jinja2.PackageLoader("cips_stats", "report/templates"),
                              autoescape=jinja2.select_autoescape(["html", "j2"]))


@pytest.mark.parametrize("env", [_filters.environment(), _plain_env()], ids=["filters", "plain"])
def test_warnings_render_as_sentences_most_severe_first(env):
    html = env.get_template("report.html.j2").render(**_context(warnings=WARN))
    assert "Error in reliability: did not converge." in html
    assert "Caution in indicators: Use with caution: CV between 16.6% and 33.3% (12 cells)." in html
    assert "{'" not in html and "data-table='warnings'" not in html      # no dicts, no legacy table
    assert html.index("Error in reliability") < html.index("Caution in indicators")
    assert '<li class="sev-error">' in html and '<li class="sev-caution">' in html
    # user strings are text, never markup
    assert "<script>" not in html and "<img src=x" not in html and "&lt;script&gt;" in html
    assert "<title>T &lt;b&gt;</title>" in html and "boom &lt;b&gt;" in html and "p &lt;i&gt;1&lt;/i&gt;" in html


def test_template_keeps_its_old_variables():
    html = _plain_env().get_template("report.html.j2").render(**_context())
    assert "data-table='warnings'" in html                  # warnings_html still shown when no rows are given
    assert "This section failed." in html and '<div class="scroll"><table' in html
    assert 'src="data:image/png;base64,AAAA"' in html and 'alt="fig &lt;b&gt;"' in html
    assert "http://" not in html and "https://" not in html and "<script" not in html and "<link" not in html
    html = _plain_env().get_template("report.html.j2").render(**_context(warnings=[]))
    assert "No warnings." in html


def test_flag_sentence_forms():
    f = Flag("small_cell", "fewer than 30 respondents", "caution", {"country": "A", "iteration": 2})
    assert _filters.flag_sentence(f) == "Caution: fewer than 30 respondents (country A, iteration 2)."
    assert _filters.flag_sentence(f.to_dict()) == _filters.flag_sentence(f)
    assert _filters.flag_sentence({"severity": "info", "code": "no_message_here"}) == "Note: no message here."
    assert _filters.flag_sentence({"severity": "warning", "message": "x", "where": {"cells": [1, 2, 3]}}) == \
        "Warning: x (3 cells)."
    assert _filters.flag_sentence({"severity": "warning", "message": "x", "where": float("nan")}) == "Warning: x."
    assert _filters.severity_class({"severity": "odd"}) == "sev-info"
