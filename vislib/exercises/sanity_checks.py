"""Checks for the exercises of notebook 10_sanity_checks."""
from __future__ import annotations

NOTEBOOK = "10_sanity_checks"
