#!/usr/bin/env python
"""Gradient diagnostics at a fixed θ (see pgrun/lab/diagnose.py), with Hydra-style overrides:

    python scripts/diagnose.py env=Bandit policy=softmax_linear \
        diagnose.estimators=[reinforce,reward_to_go,baseline] diagnose.batches=256
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout's pgrun

from pgrun.lab.diagnose import main  # noqa: E402

if __name__ == "__main__":
    main()
