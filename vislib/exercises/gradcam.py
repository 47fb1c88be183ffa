"""Checks for the exercises of notebook 06_gradcam."""
from __future__ import annotations

NOTEBOOK = "06_gradcam"
