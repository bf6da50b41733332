#!/usr/bin/env python
"""Reproduce the lecture comparisons: writes report.md + figures (see pgrun/report/lecture_report.py).

    python scripts/lecture_report.py --out lecture_report [--quick] [--sections ...]

Exit status 1 when a must-hold claim (unbiasedness, reward-to-go variance reduction,
importance-weight growth with horizon, exact identities) does not hold.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout's pgrun

from pgrun.report.lecture_report import main  # noqa: E402

if __name__ == "__main__":
    main()
