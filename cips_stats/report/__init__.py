"""HTML report and table exports, built from the serialised results of the statistical modules.

:func:`build` writes one self-contained ``index.html`` (inline CSS, figures as
embedded PNG), the CSV tables behind every section and ``report.json``
(provenance and every section's serialised result).  Every table passes
through :mod:`cips_stats.disclosure` first.  :func:`compute` and
:func:`export` run and write one section on its own (the ``cips-stats demo``
steps use them, then hand their results to :func:`build`).

Examples
--------
>>> from cips_stats import report
>>> report.SECTIONS
('data', 'reliability', 'cfa', 'invariance', 'indicators', 'gap', 'drift', 'change', 'claims', 'kpi', 'review', 'appendix')
"""

from .builder import SECTIONS, Report, build, compute, export

__all__ = ["build", "compute", "export", "Report", "SECTIONS"]
