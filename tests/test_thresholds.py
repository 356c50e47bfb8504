"""Tests of cips_stats.thresholds (every cut-off with its reference) and errors.emit."""

import math
import warnings

import pytest

import cips_stats as cs
from cips_stats import thresholds as th
from cips_stats.errors import CipsError, Flag, LowReliabilityWarning, PoorFitWarning, emit


def test_every_constant_is_registered_with_a_reference():
    for name, t in th.REGISTRY.items():
        assert t.name == name
        assert t.reference and len(t.reference) > 20
        assert t.direction in (">=", "<=", ">", "<")
    for name in ("CFI_GOOD", "TLI_GOOD", "RMSEA_GOOD", "SRMR_GOOD", "CFI_ACCEPTABLE", "RMSEA_ACCEPTABLE",
                 "RELIABILITY_ACCEPTABLE", "RELIABILITY_POOR", "CV_CAUTION", "CV_SUPPRESS", "MIN_CELL",
                 "DISCLOSURE_MIN", "DISCLOSURE_FLOOR", "RHAT_MAX", "ESS_MIN", "WEIGHT_RATIO_MAX"):
        assert th.REGISTRY[name].value == getattr(th, name)
    assert "Hu" in th.REGISTRY["CFI_GOOD"].reference and "Chen" in th.REGISTRY["CHEN2007_SMALL_N"].reference
    assert len(th.REFERENCES) == len(set(th.REFERENCES))


def test_published_values():
    assert (th.CFI_GOOD, th.TLI_GOOD, th.RMSEA_GOOD, th.SRMR_GOOD) == (0.95, 0.95, 0.06, 0.08)
    assert th.CONFIGURAL_FIT == {"cfi": 0.90, "rmsea": 0.08}
    assert th.chen2007("metric", 301) == {"cfi": 0.010, "rmsea": 0.015, "srmr": 0.030}
    assert th.chen2007("scalar", 301) == {"cfi": 0.010, "rmsea": 0.015, "srmr": 0.010}
    assert th.chen2007("metric", 300) == {"cfi": 0.005, "rmsea": 0.010, "srmr": 0.025}  # N <= 300 is small
    assert th.chen2007("strict", 300) == {"cfi": 0.005, "rmsea": 0.010, "srmr": 0.005}
    with pytest.raises(CipsError):
        th.chen2007("configural", 500)
    assert (th.CV_CAUTION, th.CV_SUPPRESS) == (0.166, 0.333)
    assert th.DISCLOSURE_MIN >= th.DISCLOSURE_FLOOR == 5


def test_judge_fit_edges_and_kinds():
    exact = {"cfi": 0.95, "tli": 0.95, "rmsea": 0.06, "srmr": 0.08}
    assert th.judge_fit(exact) == ()                                  # the cut-offs themselves pass
    flags = th.judge_fit({"cfi": 0.899, "tli": 0.92, "rmsea": 0.081, "srmr": 0.081, "extra": 1})
    assert {f.code: f.severity for f in flags} == {"fit_cfi": "warning", "fit_tli": "caution",
                                                   "fit_rmsea": "warning", "fit_srmr": "warning"}
    assert th.judge_fit({"cfi": math.nan, "rmsea": None}) == ()
    scaled = {"cfi": 0.80, "cfi_scaled": 0.97, "rmsea": 0.10}
    assert [f.where["measure"] for f in th.judge_fit(scaled, kind="scaled")] == ["rmsea"]
    assert th.judge_fit(scaled, where={"model": "m"})[0].where["model"] == "m"


def test_other_judges():
    assert th.judge_reliability(0.70) == () and th.judge_reliability(math.nan) == ()
    assert th.judge_reliability(0.6999)[0].code == "alpha_questionable"
    assert th.judge_reliability(0.59, statistic="omega")[0].code == "omega_poor"
    assert [th.cv_category(v) for v in (0.166, 0.1661, 0.333, 0.3331, math.nan)] == \
        ["ok", "caution", "caution", "suppress", "undefined"]
    assert th.judge_convergence(1.01, 400, 400) == ()
    assert {f.code for f in th.judge_convergence(1.011, 399)} == {"r_hat", "low_ess"}
    assert [f.code for f in th.judge_convergence(1.0, 500, 100)] == ["low_ess"]
    assert th.judge_weights(3.5, 1.0) == () and th.judge_weights(3.6, 1.0)[0].code == "extreme_weights"
    assert th.check_disclosure_min(5) == 5
    for bad in (4, 2.5, True, "10"):
        with pytest.raises(CipsError):
            th.check_disclosure_min(bad)


def test_emit_warns_and_returns_the_flag():
    f = Flag("fit_cfi", "CFI is low.")
    with pytest.warns(PoorFitWarning, match=r"CFI is low\. \[fit_cfi\]"):
        assert emit(f, PoorFitWarning) is f
    with pytest.raises(CipsError):
        emit(f, UserWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LowReliabilityWarning)
        with pytest.raises(LowReliabilityWarning):
            emit(f, LowReliabilityWarning)


def test_warning_classes_are_cips_warnings():
    for name in ("SmallCellWarning", "LowReliabilityWarning", "PoorFitWarning", "NonInvarianceWarning",
                 "ConvergenceWarning", "NumericalWarning"):
        assert issubclass(getattr(cs.errors, name), cs.CipsWarning)


def test_argument_checks_are_typed_and_name_the_argument():
    import numpy as np

    from cips_stats.errors import check_choice, check_count, check_level

    assert check_level(np.float64(0.9)) == 0.9 and check_count(np.int64(3), "n") == 3
    for bad in (0, 1, 1.5, -0.1, float("nan"), True, np.bool_(True), "0.5", None):
        with pytest.raises(CipsError, match="significance="):
            check_level(bad, "significance")
    for bad in (99, 100.0, True, "200", None):
        with pytest.raises(CipsError, match="n_boot="):
            check_count(bad, "n_boot", 100)
    with pytest.raises(CipsError, match=r"on= argument must be one of \['scale', 'items'\]"):
        check_choice("cells", ("scale", "items"), "on")
