#!/usr/bin/env python
"""Compare pgrun/report/rlstats.py with rliable's own functions on the same random data.

rliable is archived and pins nothing pgrun needs, so run this in a throwaway venv:

    python3 -m venv /tmp/rliable-venv && /tmp/rliable-venv/bin/pip install rliable "pandas<3"
    /tmp/rliable-venv/bin/python scripts/check_rliable.py

(arch 7.2, rliable's bootstrap, fails to import with pandas 3.)
rlstats.py is loaded by file path (it imports only numpy and scipy), so pgrun and JAX need not
be installed there. Point estimates must agree to 1e-12; bootstrap intervals (different random
draws: rliable uses arch's StratifiedBootstrap) to within `--ci-tol` in normalised units.
"""

import argparse
import importlib.util
import os
import sys

import numpy as np
from rliable import library as rly
from rliable import metrics

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("rlstats", os.path.join(HERE, "pgrun", "report", "rlstats.py"))
rlstats = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rlstats)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--reps", type=int, default=20000)
    p.add_argument("--ci-tol", type=float, default=0.03)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    # 3 methods x [10 runs, 4 tasks], with task-dependent offsets (so stratification matters)
    offs = np.array([0.0, 0.5, 1.0, 2.0])
    data = {m: rng.normal(mu, 0.6, size=(10, 4)) + offs for m, mu in (("A", 0.0), ("B", 0.3), ("C", 0.35))}
    rows, ok = [], True

    def check(name, ours, theirs, tol):
        nonlocal ok
        ours, theirs = np.asarray(ours, float), np.asarray(theirs, float)
        err = float(np.max(np.abs(ours - theirs)))
        good = err <= tol
        ok &= good
        rows.append(f"{'ok  ' if good else 'FAIL'} {name:38s} max |diff| {err:.2e} (tol {tol:g})")

    for m, S in data.items():
        check(f"IQM {m}", rlstats.iqm(S), metrics.aggregate_iqm(S), 1e-12)
        check(f"mean {m}", rlstats.mean(S), metrics.aggregate_mean(S), 1e-12)
    taus = np.linspace(-1, 4, 21)
    prof, prof_ci = rly.create_performance_profile(data, taus, reps=a.reps)
    for m, S in data.items():
        p_, lo, hi = rlstats.performance_profile_ci(S, taus, n_boot=a.reps)
        check(f"performance profile {m}", p_, prof[m], 1e-12)
        check(f"profile band {m}", np.stack([lo, hi]), prof_ci[m], 2 * a.ci_tol)
    iqm_fn = lambda *s: np.array([metrics.aggregate_iqm(x) for x in s])  # noqa: E731
    mean_fn = lambda *s: np.array([metrics.aggregate_mean(x) for x in s])  # noqa: E731
    for stat, fn in (("iqm", iqm_fn), ("mean", mean_fn)):
        _, cis = rly.get_interval_estimates(data, fn, reps=a.reps)
        for m, S in data.items():
            _, lo, hi = rlstats.aggregate_ci(S, stat, n_boot=a.reps)
            check(f"{stat} 95% CI {m}", [lo, hi], cis[m][:, 0], a.ci_tol)
    pairs = {f"{x},{y}": (data[x], data[y]) for x in data for y in data if x != y}
    poi, poi_ci = rly.get_interval_estimates(pairs, metrics.probability_of_improvement, reps=a.reps)
    for k, (X, Y) in pairs.items():
        v, lo, hi = rlstats.probability_of_improvement_ci(X, Y, n_boot=a.reps)
        check(f"P(X > Y) {k}", v, poi[k], 1e-12)
        check(f"P(X > Y) 95% CI {k}", [lo, hi], np.ravel(poi_ci[k]), a.ci_tol)
    print("\n".join(rows))
    print("all agree" if ok else "DISAGREEMENT")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
