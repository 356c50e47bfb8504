"""The HTML report opened in a real browser: Debian's headless Chromium, driven by playwright.

Never a browser downloaded at run time: playwright is pointed at the system
executable (``.ci/run`` installs it with apt-get).  Without it these tests
fail, with the command that installs it.

Checked: no console error or page error; every section heading and figure is
there and decoded; a screenshot is not blank; nothing is wider than the
viewport, at a desktop and at a narrow width; user strings (country names
holding markup) are shown as text and run nothing.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import cips_stats as cs

#: Country names that are markup: they must be shown as text and never run.
HOSTILE = {"C01": "<script>alert(1)</script>", "C02": "<img src=x onerror=alert(1)>", "C03": "Côte \"d'Ivoire\" & co"}
#: The quick sections of the report (those the report still has; the slow model fits are left out).
SECTIONS = tuple(s for s in ("data", "reliability", "indicators", "gap", "drift") if s in cs.report.SECTIONS)


def _chromium(candidates=None) -> str:
    if candidates is None:
        candidates = (os.environ.get("CIPS_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium",
                      shutil.which("chromium-browser"))
    for cand in candidates:
        if cand and Path(cand).exists():
            return cand
    pytest.fail("Debian's Chromium is not installed (no `chromium` on PATH, no /usr/bin/chromium): the browser test "
                "needs it. Install it with `apt-get update && apt-get install -y chromium` (.ci/run does this), or "
                "set CIPS_CHROMIUM to a Chromium executable.", pytrace=False)


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory):
    sim = cs.simulate(seed=5, n_countries=3, n_repeat=2, n_officials=40, n_private=25)
    frame = sim.raw.copy()                 # the raw answer codes, as a user's export would hold them
    frame["country"] = frame["country"].astype(str).map(lambda c: HOSTILE.get(c, c))
    data = cs.load(frame, instrument=sim.instrument)
    out = tmp_path_factory.mktemp("browser")
    rep = cs.report.build(data, out, n_boot=30, seed=1, min_cell=10, sections=SECTIONS, title="Report <b>test</b>")
    return out, rep


@pytest.fixture(scope="module")
def report_dir(hostile_report):
    """The report the layout tests open: ``CIPS_BROWSER_REPORT`` (a folder holding ``index.html``, e.g. the
    ``analysis/report`` of ``cips-stats demo``: the whole report with every section) or the quick one built here."""
    given = os.environ.get("CIPS_BROWSER_REPORT")
    if given:
        assert (Path(given) / "index.html").is_file(), f"CIPS_BROWSER_REPORT={given!r} holds no index.html"
        return Path(given), None
    return hostile_report


@pytest.fixture(scope="module")
def browser():
    exe = _chromium()
    try:
        from playwright import sync_api
    except ImportError:
        pytest.fail("playwright is not installed: it is in the test extra (pip install -e '.[test]').", pytrace=False)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


def _open(browser, path: Path, width: int, height: int = 900):
    page = browser.new_page(viewport={"width": width, "height": height})
    events = {"console": [], "errors": [], "dialogs": [], "requests": []}
    page.on("console", lambda m: events["console"].append((m.type, m.text)))
    page.on("pageerror", lambda e: events["errors"].append(str(e)))

    def _dialog(d):
        events["dialogs"].append(d.message)
        d.dismiss()

    page.on("dialog", _dialog)
    page.on("request", lambda r: events["requests"].append(r.url))
    page.goto(path.resolve().as_uri(), wait_until="load")
    return page, events


def _pixels(png: bytes) -> np.ndarray:
    from matplotlib import image

    return image.imread(io.BytesIO(png), format="png")


def test_report_renders_in_chromium(browser, report_dir):
    out, rep = report_dir
    page, ev = _open(browser, out / "index.html", 1280)
    try:
        assert [t for t in ev["console"] if t[0] == "error"] == []
        assert ev["errors"] == [] and ev["dialogs"] == []
        # self-contained: the page asked for nothing but itself and its embedded images
        assert all(u.startswith(("file://", "data:")) for u in ev["requests"]), ev["requests"]
        h2 = [t.split("\n")[0].strip() for t in page.locator("h2").all_inner_texts()]
        ids = page.eval_on_selector_all("main > section", "els => els.map(e => e.id)")
        assert ids[0] == "overview" and ids[-2:] == ["methods", "warnings"]
        assert len(SECTIONS) >= 3 and set(SECTIONS) <= set(ids), ids
        if rep is None:                                  # a given report: every section of the report
            assert set(cs.report.SECTIONS) <= set(ids), ids
        assert len(h2) == len(ids) and all(h2), h2
        # every figure is there and decoded by the browser
        n_fig = page.locator("figure img").count()
        html = (out / "index.html").read_text(encoding="utf-8")
        assert n_fig == html.count("<figure>") and n_fig >= 3
        widths = page.eval_on_selector_all("figure img", "els => els.map(e => e.naturalWidth)")
        assert min(widths) > 100
        # nothing wider than the viewport
        sw, iw = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert sw <= iw, (sw, iw)
        over = page.evaluate(
            "Array.from(document.querySelectorAll('body *')).filter(e => {const r = e.getBoundingClientRect();"
            " return r.right > window.innerWidth + 1 && !e.closest('.scroll') && !e.closest('nav');}).length")
        assert over == 0
        # a screenshot that is not blank
        img = _pixels(page.screenshot(full_page=False))
        assert img.shape[0] >= 800 and float(img[..., :3].std()) > 0.05
    finally:
        page.close()


def test_report_fits_a_narrow_screen_and_wide_tables_scroll_in_their_box(browser, report_dir):
    out, _ = report_dir
    page, ev = _open(browser, out / "index.html", 760)
    try:
        sw, iw = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert sw <= iw, (sw, iw)
        # at least one table is wider than its box and scrolls inside it instead of widening the page
        boxes = page.eval_on_selector_all(
            ".scroll", "els => els.map(e => [e.scrollWidth, e.clientWidth, getComputedStyle(e).overflowX])")
        assert any(s > c and o in ("auto", "scroll") for s, c, o in boxes), boxes
        assert ev["errors"] == []
    finally:
        page.close()


def test_user_strings_are_text_never_markup(browser, hostile_report):
    out, rep = hostile_report
    page, ev = _open(browser, out / "index.html", 1280)
    try:
        page.wait_for_timeout(200)                 # let any injected handler (there must be none) fire
        assert ev["dialogs"] == []
        assert page.evaluate("document.scripts.length") == 0
        assert page.evaluate("document.querySelectorAll('[onerror], [onload], [onclick]').length") == 0
        imgs = page.eval_on_selector_all("img", "els => els.map(e => e.getAttribute('src').slice(0, 22))")
        assert all(s == "data:image/png;base64," for s in imgs), imgs
        text = page.inner_text("body")
        assert HOSTILE["C01"] in text or HOSTILE["C02"] in text   # shown, as text
        assert page.title() == "Report <b>test</b>"
    finally:
        page.close()


def test_missing_chromium_fails_with_the_install_command():
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install -y chromium"):
        _chromium(candidates=(None, "/nonexistent/chromium"))
