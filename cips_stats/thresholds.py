"""Every statistical cut-off with its reference (issue 12, in progress)."""
