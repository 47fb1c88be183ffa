"""Checks for the exercises of notebook 02_tsne."""
from __future__ import annotations

NOTEBOOK = "02_tsne"
