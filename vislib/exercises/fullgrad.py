"""Checks for the exercises of notebook 07_fullgrad."""
from __future__ import annotations

NOTEBOOK = "07_fullgrad"
