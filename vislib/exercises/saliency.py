"""Checks for the exercises of notebook 03_saliency."""
from __future__ import annotations

NOTEBOOK = "03_saliency"
