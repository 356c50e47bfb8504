"""Sample size and power for detecting change (issue 9, in progress)."""
