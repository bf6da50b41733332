"""The estimator lab (`pgrun-diagnose`): many independent gradient estimates at one θ, their
variance and bias against an exact or Monte-Carlo reference."""
