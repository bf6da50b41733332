"""Sampling with a policy: whole episodes (`episodes`), fixed-horizon steps with auto-reset
(`steps`), both inside jit, and gymnasium vector envs stepped on the host (`host`)."""
