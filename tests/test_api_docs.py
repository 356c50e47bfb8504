"""docs/api.md lists every public name and is up to date with the code (regenerate: python docs/make_api.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("make_api", ROOT / "docs" / "make_api.py")
make_api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_api)


def test_api_reference_is_up_to_date():
    current = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert current == make_api.main(write=False), "docs/api.md is stale: run `python docs/make_api.py`."


def test_api_reference_lists_every_public_name():
    import importlib as il

    text = make_api.main(write=False)
    for modname in make_api.public_modules():
        assert f"## `{modname}`" in text
        for attr in getattr(il.import_module(modname), "__all__", []):
            if not attr.startswith("__"):
                assert f"**`{attr}" in text, f"{modname}.{attr}"
    for must in ("cips_stats.estimate", "cips_stats.change", "cips_stats.claims", "cips_stats.power",
                 "cips_stats.thresholds", "cips_stats.reliability"):
        assert f"## `{must}`" in text
    assert "**`indicators(" in text and "**`by_cell(" in text and "**`categorical_omega(" in text
