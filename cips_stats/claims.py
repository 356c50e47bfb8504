"""Claim audits such as "X% of supported key factors improved" (issue 9, in progress)."""
