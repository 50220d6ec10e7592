"""Datasets: the catalog (what exists) and loading (uint8 splits on disk -> memory)."""
