"""The leakage audit: exact, near and mirrored copies, its measured quality, what it means for a score."""
