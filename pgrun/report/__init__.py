"""The lecture report (claims of the notes checked against runs and exact gradients) and
`pgrun-plot` (learning curves and score tables from run directories)."""
