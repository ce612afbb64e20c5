"""Figures: each function returns a matplotlib Figure (notebooks show and save it with NotebookRun.figure)."""
