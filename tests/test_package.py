"""The package's public faces: every name in ``__all__`` resolves, and the import stays light."""

from __future__ import annotations

import subprocess
import sys
import time

import cips_stats as cs


def test_every_public_name_resolves():
    for name in cs.__all__:
        assert getattr(cs, name) is not None, name


def test_star_import_works():
    namespace: dict = {}
    exec("from cips_stats import *", namespace)
    assert "simulate" in namespace and callable(namespace["simulate"])
    assert "reliability" in namespace


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_import_is_light():
    """issue 12: ``import cips_stats`` pulled pandas and SciPy eagerly (``cips-stats --help`` took 0.51 s)."""
    code = ("import sys, cips_stats; heavy = [m for m in ('numpy', 'pandas', 'scipy', 'pymc', 'pytensor', "
            "'semopy', 'matplotlib', 'arviz', 'statsmodels') if m in sys.modules]; print(','.join(heavy))")
    assert _run(code) == ""
    cli = ("import sys, cips_stats.cli; print(','.join(m for m in ('numpy', 'pandas', 'scipy', 'matplotlib') "
           "if m in sys.modules))")
    assert _run(cli) == ""


def test_help_is_fast():
    """``cips-stats --help`` within 0.15 s of Python's own start-up (best of five, the machine may be busy)."""
    def best(args: list[str]) -> float:
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            subprocess.run(args, capture_output=True, check=True)
            times.append(time.perf_counter() - t0)
        return min(times)

    bare = best([sys.executable, "-c", "pass"])
    helped = best([sys.executable, "-c", "import sys; sys.argv = ['cips-stats', '--help']; "
                   "from cips_stats.cli import main; main()"])
    assert helped - bare < 0.15, (helped, bare)


def test_simulate_is_callable_whichever_import_came_first():
    code = ("import cips_stats.simulate, cips_stats as cs; "
            "print(type(cs.simulate(seed=1, n_countries=1, n_repeat=1, n_officials=20, n_private=20)).__name__)")
    assert _run(code) == "Simulation"
    code = "import cips_stats as cs; f = cs.simulate; import cips_stats.power; print(cs.simulate is f)"
    assert _run(code) == "True"


def test_lazy_names_are_the_real_objects():
    from cips_stats.data import SurveyData, load
    from cips_stats.instrument import Instrument

    assert cs.SurveyData is SurveyData and cs.load is load and cs.Instrument is Instrument
    assert {"reliability", "thresholds", "results"} <= set(dir(cs))
