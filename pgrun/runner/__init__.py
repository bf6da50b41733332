"""The host side of a run: the loops that call the compiled program chunk after chunk (pure
JAX and gymnasium host), summary figures, metrics.csv, checkpoints, run directories,
TensorBoard, interrupts, the compilation cache, and `pgrun-eval` with video."""
