"""The published Feb-2024 CIPS comparison reproduced from counts, with its assumptions and ICC sensitivity.

The release: perceptions improved in 85% of supported and 73% of unsupported key factors (officials),
72% and 61% (private sector); 17 countries surveyed twice, 10 key factors, so 170 cells per group.
The split of the 170 cells into supported and unsupported is not published: two assumed splits are
used, 53/117 (about 3 supported factors per country; reproduces all four percentages with conventional
rounding) and 80/90.  For each group and split, :func:`cips_stats.claims.from_aggregates` gives the
shares, the difference with its Newcombe interval, the z test and Fisher's exact test at intra-country
correlations 0 to 0.5 (the sensitivity table).  No randomness: ``quick`` changes nothing.
"""

from __future__ import annotations

import pandas as pd

from cips_stats import claims

#: (group, split, supported_improved, supported_total, unsupported_improved, unsupported_total)
CASES = [
    ("officials", "53/117", 45, 53, 85, 117),
    ("private", "53/117", 38, 53, 71, 117),
    ("officials", "80/90", 68, 80, 66, 90),
    ("private", "80/90", 58, 80, 55, 90),
]


def run(quick: bool = False) -> pd.DataFrame:
    """One row per group, split and assumed intra-country correlation."""
    rows = []
    for group, split, si, st, ui, ut in CASES:
        r = claims.from_aggregates(supported_improved=si, supported_total=st, unsupported_improved=ui,
                                   unsupported_total=ut, n_countries=17, label=group)
        sens = r.sensitivity.copy()
        sens.insert(0, "split", split)
        sens.insert(0, "group", group)
        sens["supported_share"] = r.supported_share
        sens["unsupported_share"] = r.unsupported_share
        sens["difference"] = r.difference
        sens["p_fisher"] = r.p_fisher
        rows.append(sens)
    return pd.concat(rows, ignore_index=True)


if __name__ == "__main__":  # pragma: no cover
    print(run().to_string())
