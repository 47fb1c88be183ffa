"""Checks for the exercises of notebook 05_cam."""
from __future__ import annotations

NOTEBOOK = "05_cam"
