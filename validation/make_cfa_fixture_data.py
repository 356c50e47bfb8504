"""Write the data fixtures that validation/r/cfa.R fits with lavaan.

* tests/reference/cfa_sim10.csv — a numpy-simulated 10-factor survey (1,200 respondents,
  3 five-point items per factor, correlated factors, complete answers).
* tests/reference/cfa_simcips.csv (+ cfa_simcips_model.txt) — the officials of one
  country-iteration of ``cs.simulate(seed=11)`` with their missing answers on the items of
  the first four key factors (20 items), and the instrument's model syntax for them.

Run from the repository root: ``python validation/make_cfa_fixture_data.py``, then
``Rscript validation/r/cfa.R``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parents[1] / "tests" / "reference"


def sim10(seed: int = 20261122, n: int = 1200, m: int = 10, k: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    R = 0.35 + 0.65 * np.eye(m)
    F = rng.normal(size=(n, m)) @ np.linalg.cholesky(R).T
    lam = rng.uniform(0.55, 0.85, size=(m, k))
    cols, X = [], []
    for j in range(m):
        for i in range(k):
            x = lam[j, i] * F[:, j] + rng.normal(size=n) * np.sqrt(1 - lam[j, i] ** 2)
            cuts = np.sort(rng.normal(0, 0.9, size=4))
            X.append(np.digitize(x, cuts) + 1)
            cols.append(f"f{j + 1}_{i + 1}")
    df = pd.DataFrame(np.array(X).T, columns=cols)
    df.insert(0, "id", np.arange(1, n + 1))
    return df


def simcips(seed: int = 11) -> tuple[pd.DataFrame, str]:
    import cips_stats as cs

    sim = cs.simulate(seed=seed, n_countries=2, n_repeat=1, n_officials=600, n_private=50)
    fr = sim.data.frame
    fr = fr[fr["group"] == "officials"]
    first = fr.groupby(["country", "iteration"]).size().idxmax()
    sub = fr[(fr["country"] == first[0]) & (fr["iteration"] == first[1])]
    inst = sim.data.instrument
    factors = [f.id for f in inst.key_factors][:4]   # 20 items: lavaan's FIML on all 50 ran > 15 min
    syn = inst.model_syntax("officials", factors=factors)
    items = [i for f in factors for i in inst.factor_items(f, group="officials")]
    out = sub[items].reset_index(drop=True)
    out.insert(0, "id", np.arange(1, len(out) + 1))
    return out, syn


def main() -> None:
    sim10().to_csv(OUT / "cfa_sim10.csv", index=False)
    df, syn = simcips()
    df.to_csv(OUT / "cfa_simcips.csv", index=False, na_rep="NA")
    (OUT / "cfa_simcips_model.txt").write_text(syn + "\n", encoding="utf-8")
    print(len(df), "rows;", float(df.drop(columns="id").isna().mean().mean()), "missing share")


if __name__ == "__main__":
    main()
