"""Photos: face boxes and detectors, the prediction API and its commands, videos, out-of-distribution checks,
hard examples, generated photos."""
