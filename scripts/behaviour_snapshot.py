"""Record and compare the metrics.csv of a fixed set of pgrun commands: the proof that a
refactor changed nothing for users (issue 11). Every column but wall_s must be identical, and
summary.json must hold the same keys and the same config.

    python scripts/behaviour_snapshot.py record /tmp/before     # on the old code
    python scripts/behaviour_snapshot.py record /tmp/after      # on the new code
    python scripts/behaviour_snapshot.py compare /tmp/before /tmp/after
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

# name -> pgrun arguments (short runs; the default command in full)
COMMANDS: dict[str, list[str]] = {
    "default": ["estimator=baseline", "env=CartPole"],
    "ppo": ["estimator=ppo", "iterations=10", "log_every=5"],
    "trpo": ["estimator=trpo", "iterations=10", "log_every=5"],
    "pendulum_ac": ["env=Pendulum", "policy=mlp", "estimator=actor_critic", "iterations=10", "log_every=5"],
    "chain_optimal": ["env=Chain", "policy=softmax_linear", "estimator=optimal_baseline", "iterations=20",
                      "log_every=5"],
    "sweep_lr": ["sweep.optimizer.lr=[1e-3,3e-3]", "iterations=10", "log_every=5"],
    "gym_cartpole": ["env=gym:CartPole-v1", "iterations=5", "log_every=5"],
}
IGNORED = {"wall_s"}


def record(out: Path) -> None:
    pgrun = Path(sys.executable).with_name("pgrun")
    for name, args in COMMANDS.items():
        run_dir = out / name
        t0 = time.perf_counter()
        proc = subprocess.run([str(pgrun), *args, "progress=false", f"hydra.run.dir={run_dir}"],
                              capture_output=True, text=True)
        print(f"{name:15s} exit {proc.returncode}  {time.perf_counter() - t0:5.1f} s  pgrun {' '.join(args)}")
        if proc.returncode != 0:
            print(proc.stderr[-3000:])


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k not in IGNORED} for row in csv.DictReader(f)]


def compare(a: Path, b: Path) -> int:
    bad = 0
    for name in COMMANDS:
        ra, rb = _rows(a / name / "metrics.csv"), _rows(b / name / "metrics.csv")
        cells = sum(len(r) for r in ra)
        diff = [(i, k) for i, (x, y) in enumerate(zip(ra, rb)) for k in x if x[k] != y.get(k)]
        same = len(ra) == len(rb) and not diff and (not ra or ra[0].keys() == rb[0].keys())
        sa, sb = (json.loads((d / name / "summary.json").read_text()) for d in (a, b))
        same_summary = sa.keys() == sb.keys() and sa["config"] == sb["config"]
        bad += not (same and same_summary)
        print(f"{name:15s} {len(ra):4d} rows {cells:6d} cells  metrics {'identical' if same else 'DIFFERENT'}"
              f"  summary keys+config {'identical' if same_summary else 'DIFFERENT'}"
              + (f"  first differences: {diff[:5]}" if diff else ""))
    return 1 if bad else 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("record").add_argument("out", type=Path)
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = p.parse_args()
    if args.cmd == "record":
        record(args.out)
    else:
        sys.exit(compare(args.a, args.b))


if __name__ == "__main__":
    main()
