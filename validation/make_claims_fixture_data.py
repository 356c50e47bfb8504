"""Write tests/reference/claims_cells.csv: the audited cells of a simulated survey, input of validation/r/claims.R.

Run from the repository root: ``python -m validation.make_claims_fixture_data``.  The cells are the
point-rule and FDR-rule decisions, changes and baselines of ``cs.simulate(seed=1)`` (indicators with
``n_boot=500, seed=1``; cell changes with BH at 5%), cells with a row in the true support table.
The CSV is committed so that the R fixture and the Python tests read the very same numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import cips_stats as cs

OUT = Path(__file__).resolve().parents[1] / "tests" / "reference" / "claims_cells.csv"


def main() -> None:
    sim = cs.simulate(seed=1)
    ind = cs.estimate.indicators(sim.data, n_boot=500, seed=1)
    cc = cs.change.cell_changes(ind)
    sup = sim.truth["supported"][["country", "factor", "supported"]]
    cells = cc.table.merge(sup, on=["country", "factor"], how="inner")
    cells = cells.sort_values(["group", "country", "factor"], kind="stable").reset_index(drop=True)
    out = cells[["group", "country", "factor", "supported", "baseline", "estimate", "se", "p_value",
                 "p_adjusted", "significant"]].copy()
    out["supported"] = out["supported"].astype(int)
    out["significant"] = out["significant"].astype(int)
    out["improved_point"] = (out["estimate"] > 0).astype(int)
    out["improved_fdr"] = ((out["significant"] == 1) & (out["estimate"] > 0)).astype(int)
    for c in ("baseline", "estimate", "se", "p_value", "p_adjusted"):
        out[c] = np.round(out[c].to_numpy(float), 12)
    out.to_csv(OUT, index=False)
    print(f"wrote {OUT} ({len(out)} cells)")


if __name__ == "__main__":
    main()
