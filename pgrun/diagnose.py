"""`python -m pgrun.diagnose ...`, as documented before the lab moved: the same as `pgrun-diagnose`
(pgrun/lab/diagnose.py). Part of the lab layer."""

from pgrun.lab.diagnose import main

if __name__ == "__main__":
    main()
