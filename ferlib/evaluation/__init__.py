"""Scores: metrics and intervals, calibration, result files, study-vs-run tables, verdicts, settings tables."""
