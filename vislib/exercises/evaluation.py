"""Checks for the exercises of notebook 08_evaluation."""
from __future__ import annotations

NOTEBOOK = "08_evaluation"
