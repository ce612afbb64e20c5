"""The leakage audit: exact, near and mirrored copies, and what they mean for a score (its measured quality:
tools/audit_benchmark.py)."""
