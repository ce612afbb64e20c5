"""Photos: face detection, the prediction API, out-of-distribution checks, hard examples, generated photos."""
