"""Reports: the notebook helper (run card, figures shown and saved), HTML rendering, the landing page, checks."""
