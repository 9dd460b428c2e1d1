"""Training and evaluation: the run loop, checkpoints, run folders, distributed helpers."""
