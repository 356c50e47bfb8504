"""The ``cips-stats`` command line (being implemented)."""

from __future__ import annotations

import click


@click.group()
def main() -> None:
    """cips-stats: statistics for the Customs Integrity Perception Survey."""
