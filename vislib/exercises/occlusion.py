"""Checks for the exercises of notebook 04_occlusion."""
from __future__ import annotations

NOTEBOOK = "04_occlusion"
