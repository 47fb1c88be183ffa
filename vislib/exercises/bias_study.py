"""Checks for the exercises of notebook 09_bias_study."""
from __future__ import annotations

NOTEBOOK = "09_bias_study"
