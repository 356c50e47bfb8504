"""cs.power: Cochran sample size, minimum detectable change, simulation power on joblib and Dask."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

import cips_stats as cs
from cips_stats import power


# ---------------------------------------------------------------------------------- sample size
def test_sample_size_published_cips_target():
    s = power.sample_size(margin=0.05, ci=0.95, population=1100)
    assert s == 285 and int(s) == 285 and s.n == 285
    z = norm.ppf(0.975)
    n0 = z ** 2 * 0.25 / 0.05 ** 2
    assert s.n0 == pytest.approx(n0) and s.n0 == pytest.approx(384.1459, abs=1e-4)
    assert s.n_fpc == pytest.approx(1100 * n0 / (1099 + n0))
    # Cochran's approximate correction n0 / (1 + (n0 - 1) / N) differs by less than one respondent
    assert abs(n0 / (1 + (n0 - 1) / 1100) - s.n_fpc) < 1
    assert s.to_frame()["n"].iloc[0] == 285 and s.provenance.method == "power.sample_size"


def test_sample_size_edges():
    assert power.sample_size(margin=0.05) == 385                         # infinite population
    assert power.sample_size(margin=0.05, deff=2.0) == math.ceil(2 * 384.14588)
    small = power.sample_size(margin=0.05, population=50)
    assert small.n <= 50 and small == 45
    assert power.sample_size(margin=0.5, population=1) == 1
    assert power.sample_size(margin=0.03, p=0.1) < power.sample_size(margin=0.03)
    # larger populations need more respondents, never more than the infinite-population size
    sizes = [int(power.sample_size(margin=0.05, population=n)) for n in (200, 1100, 10_000, 10 ** 7)]
    assert sizes == sorted(sizes) and sizes[-1] == 385


@pytest.mark.parametrize("kw, name", [(dict(margin=0), "margin"), (dict(margin=1.5), "margin"),
                                      (dict(margin=0.05, ci=1), "ci"),
                                      (dict(margin=0.05, population=0), "population"),
                                      (dict(margin=0.05, population=10.5), "population"),
                                      (dict(margin=0.05, deff=-1), "deff"), (dict(margin=0.05, p=True), "p")])
def test_sample_size_bad_input(kw, name):
    with pytest.raises(cs.DataError, match=name) as e:
        power.sample_size(**kw)
    assert e.value.problems[0].column == name


# ------------------------------------------------------------------------------------------ MDE
def test_mde_formula():
    r = power.mde((262, 202), sd=2.1, deff=1.4, significance=0.05, power=0.8)
    expect = (norm.ppf(0.975) + norm.ppf(0.8)) * 2.1 * math.sqrt(1.4 * (1 / 262 + 1 / 202))
    assert r.mde == pytest.approx(expect)
    # finite population: smaller MDE; 90% power: larger
    assert power.mde(262, sd=2.1, population=600).mde < power.mde(262, sd=2.1).mde
    assert power.mde(262, sd=2.1, power=0.9).mde > power.mde(262, sd=2.1).mde
    # the MDE halves when the sample quadruples
    assert power.mde(1000, sd=2).mde == pytest.approx(power.mde(250, sd=2).mde / 2)


def test_mde_population_smaller_than_sample():
    with pytest.raises(cs.DataError, match="smaller than the sample") as e:
        power.mde(300, sd=2.0, population=200)
    assert e.value.problems[0].value == 200
    with pytest.raises(cs.DataError, match="smaller than the sample") as e:
        power.mde((150, 320), sd=2.0, population=300)              # only the second iteration exceeds it
    assert e.value.problems[0].value == 300 and e.value.problems[0].column == "population"
    with pytest.raises(cs.DataError, match="sd"):
        power.mde(300)
    with pytest.raises(cs.DataError, match="n_per_iteration"):
        power.mde((1, 300), sd=2.0)


def test_mde_from_indicators():
    sim = cs.simulate(seed=2, n_countries=3, n_repeat=2, n_officials=80, n_private=60)
    ind = cs.estimate.indicators(sim.data, n_boot=60, seed=2)
    r = power.mde(250, indicators=ind)
    t = r.table
    assert set(t["group"]) == {"officials", "private"} and (t["mde"] > 0).all()
    # sd recovered from se, n and deff: se^2 = deff sd^2 / n
    tab = ind.table[~ind.table["suppressed"]]
    one = tab[(tab["group"] == "officials") & (tab["factor"] == t["factor"].iloc[0])]
    sd = np.median(one["se"] * np.sqrt(one["n"] / one["deff"]))
    assert t.loc[(t["group"] == "officials") & (t["factor"] == t["factor"].iloc[0]), "sd"].iloc[0] == \
        pytest.approx(sd)
    assert r.to_frame() is t
    own = power.mde(None, indicators=ind)
    assert (own.table["n_1"] > 0).all()
    # a population smaller than the cells' own sample sizes is refused, naming it
    with pytest.raises(cs.DataError, match="smaller than the cells' sample sizes") as e:
        power.mde(None, indicators=ind, population=10)
    assert e.value.problems[0].value == 10 and "10" in str(e.value)
    with pytest.raises(cs.DataError, match="indicators") as e:
        power.mde(250, indicators=ind.table)
    assert e.value.problems[0].value == "DataFrame"


# ------------------------------------------------------------------------------- simulate_claim
_TINY = dict(n_countries=4, n_officials=40, n_private=40, n_sim=3, n_boot=40, n_perm=200,
             tests=("permutation", "did"), rules=("point",), seed=7)


def test_simulate_claim_backends_agree_with_dask_localcluster():
    distributed = pytest.importorskip("distributed")
    seq = power.simulate_claim(backend="sequential", **_TINY)
    thr = power.simulate_claim(backend="threading", n_jobs=2, **_TINY)
    with distributed.LocalCluster(n_workers=2, processes=False, threads_per_worker=1,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        dsk = power.simulate_claim(backend=client, **_TINY)
    # a one-worker cluster: the replications run on the cluster, not in this process (joblib's Dask backend
    # would run them here, n_jobs being 1)
    with distributed.LocalCluster(n_workers=1, processes=False, threads_per_worker=1,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        one = power.simulate_claim(backend=client, **{**_TINY, "n_sim": 2})
        executed = sum(client.run(lambda dask_worker: dask_worker.state.executed_count).values())
    assert executed == 2 and one.backend.startswith("dask")
    key = ["support_effect", "group", "rule", "test", "seed"]
    a = seq.replications.sort_values(key).reset_index(drop=True)
    for other in (thr, dsk):
        b = other.replications.sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)
    assert dsk.backend.startswith("dask") and seq.backend == "sequential"
    t = seq.table
    assert set(t["test"]) == {"permutation", "did"} and (t["n_sim"] == 3).all()
    assert t["rejection_rate"].between(0, 1).all() and (t["ci_low"] <= t["rejection_rate"]).all()
    assert seq.provenance.seed == 7


def test_one_replication_is_the_user_pipeline():
    """A replication (with the worker's cached default instrument) equals simulate -> indicators -> audit."""
    design = dict(n_countries=4, n_officials=40, n_private=40, support_effect=0.5, selection="random")
    settings = dict(n_boot=40, n_perm=200, rules=["point"], tests=["permutation", "did"], significance=0.05,
                    simulate={})
    recs = pd.DataFrame(power.one_replication(5, design, settings))
    sim = cs.simulate(seed=5, n_countries=4, n_repeat=4, n_officials=40, n_private=40, support_effect=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cs.CipsWarning)              # small cells of a tiny survey
        ind = cs.estimate.indicators(sim.data, n_boot=40, seed=5)
    a = cs.claims.audit(cs.change.cell_changes(ind), supported=sim.truth["supported"], rules=("point",),
                        tests=("permutation", "did"), n_perm=200, n_boot=200, n_null=200, seed=5)
    np.testing.assert_allclose(recs["p_value"].to_numpy(), a.tests["p_value"].to_numpy())
    four = pd.DataFrame(power.one_replication(5, design, {**settings, "simulate": {"points": 4}}))
    assert not np.allclose(four["estimate"].to_numpy(), recs["estimate"].to_numpy())


def test_simulate_claim_grid_and_bad_input():
    res = power.simulate_claim(backend="sequential", **{**_TINY, "n_sim": 1, "tests": ("permutation",)},
                               support_effect=[0.0, 1.0])
    assert sorted(res.table["support_effect"].unique()) == [0.0, 1.0]
    assert len(res.rate("permutation", group="officials")) == 2
    with pytest.raises(cs.DataError, match="backend"):
        power.simulate_claim(backend="spark", **_TINY)
    with pytest.raises(cs.DataError, match="selection"):
        power.simulate_claim(backend="sequential", selection="worst", **_TINY)
    with pytest.raises(cs.DataError, match="n_sim"):
        power.simulate_claim(backend="sequential", **{**_TINY, "n_sim": 0})
    for kw, value in ((dict(n_countries=1), 1), (dict(n_officials=[40, 1.5]), 1.5), (dict(support_effect=9.0), 9.0),
                      (dict(selection=["random", "worst"]), "worst"), (dict(n_jobs=0), 0)):
        with pytest.raises(cs.DataError) as e:
            power.simulate_claim(backend="sequential", **{**_TINY, **kw})
        assert e.value.problems[0].value == value and repr(value) in str(e.value)


@pytest.mark.slow
def test_power_increases_with_support_effect():
    res = power.simulate_claim(n_countries=17, n_officials=120, n_private=100, n_sim=40, n_boot=100,
                               n_perm=999, support_effect=[0.0, 0.4], tests=("permutation",), rules=("point",),
                               seed=3)
    r = res.rate("permutation", group="officials")
    assert r.iloc[0] < 0.15 and r.iloc[1] > r.iloc[0] + 0.3
