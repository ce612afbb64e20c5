"""Training: the two-phase loop with checkpoints and resuming, one experiment end to end, the CPU champion C1."""
