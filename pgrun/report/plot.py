"""`pgrun-plot`: learning curves and final-score tables from pgrun run directories.

    pgrun-plot outputs/2026-01-01/12-00-00                      # one run, many vmapped seeds
    pgrun-plot multirun/2026-01-01/12-00-00 --group-by estimator.name --x env_steps
    pgrun-plot runs/* --group-by policy.name optimizer.lr --y length_mean --stat iqm

Every `metrics.csv` under the given paths is one run; its config is the sibling
`.hydra/config.yaml`, else `summary.json["config"]`. A replicate is one (run, sweep point,
seed), so a single run with 16 vmapped seeds and a Hydra multirun of 16 single-seed runs plot
the same way, and a vmapped sweep's points are told apart by its metrics columns
(`optimizer.lr`, ...). Replicates are grouped by the values of the `--group-by` config keys
(dotted paths, or `point`; default: every config key that differs between replicates, except
seeds), a swept key taking its sweep point's value. Keys that vary but are not grouped by are
pooled within each group: pgrun-plot prints them and names them in the legend's title.

Curves: per group, the mean (or the IQM, the mean of the middle 50 %) over replicates of
column `--y` against `--x` (iteration, or env_steps with each replicate linearly
interpolated onto a common grid up to the shortest replicate's last step), with a 95 %
percentile-bootstrap band over replicates (`pgrun.runner.stats.bootstrap_ci`, the interval
summary.json reports too).
Final scores: per replicate the mean of `--y` over its last K iterations; per group the
mean with a bootstrap 95 % CI, the IQM with its CI, and n. Written as final_scores.csv /
final_scores.md, printed, and the figure as learning_curves.png / .svg in `--out`.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from pgrun.runner.stats import N_BOOT, STATS, bootstrap_ci, iqm

IGNORED_KEYS = ("seed", "num_seeds", "progress", "log_every")


Replicate = tuple[int, int]  # (sweep point, seed); point 0 for a run without a sweep


@dataclass
class Run:
    path: str                 # the directory holding metrics.csv
    config: dict              # resolved config (nested dicts)
    columns: dict[Replicate, dict[str, np.ndarray]] = field(default_factory=dict)  # -> column -> [K]
    swept: dict[Replicate, dict[str, float]] = field(default_factory=dict)  # -> swept config key -> value

    def value(self, rep: Replicate, key: str):
        """The config value of `key` for one replicate: its sweep point's value where swept."""
        if key == "point":
            return rep[0]
        return self.swept.get(rep, {}).get(key, get_key(self.config, key))

    def flat(self, rep: Replicate) -> dict:
        """The flattened config of one replicate (values JSON-encoded, as `_flatten`)."""
        return {**_flatten(self.config), **{k: json.dumps(v) for k, v in self.swept.get(rep, {}).items()}}


# ------------------------------------------------------------------------------- load


def find_metrics(paths) -> list[str]:
    """All metrics.csv files under `paths` (files or directories, searched recursively)."""
    found = []
    for p in paths:
        if os.path.isfile(p) and os.path.basename(p) == "metrics.csv":
            found.append(os.path.abspath(p))
        elif os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                if "metrics.csv" in files:
                    found.append(os.path.abspath(os.path.join(root, "metrics.csv")))
        else:
            raise FileNotFoundError(f"{p}: no such run directory or metrics.csv")
    return sorted(set(found))


def read_config(run_dir: str) -> dict:
    hydra_cfg = os.path.join(run_dir, ".hydra", "config.yaml")
    if os.path.isfile(hydra_cfg):
        from omegaconf import OmegaConf
        return cast(dict, OmegaConf.to_container(OmegaConf.load(hydra_cfg), resolve=True))
    summary = os.path.join(run_dir, "summary.json")
    if os.path.isfile(summary):
        with open(summary) as f:
            return json.load(f).get("config", {}) or {}
    return {}


def _num(v: str) -> float:
    try:
        return float(v)
    except ValueError:
        return math.nan


def read_metrics(path: str) -> dict[Replicate, dict[str, np.ndarray]]:
    """metrics.csv -> {(point, seed): {column: values ordered by iteration}} (blank cells -> NaN).
    A vmapped sweep's rows carry a `point` column; without one every row is point 0."""
    by_rep: dict[Replicate, list[dict]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            rep = (int(float(row.get("point") or 0)), int(float(row.get("seed") or 0)))
            by_rep.setdefault(rep, []).append(row)
    out = {}
    for rep, rows in by_rep.items():
        rows.sort(key=lambda r: _num(r["iteration"]))
        out[rep] = {c: np.array([_num(r[c]) for r in rows]) for c in rows[0]}
    return out


def swept_values(config: dict, columns: dict[Replicate, dict[str, np.ndarray]]) -> dict:
    """{replicate: {key: value}} for the metrics columns that are config keys (a sweep's
    `optimizer.lr`, `gamma`, ...: constant within a replicate)."""
    keys = set(_flatten(config)) - set(IGNORED_KEYS)
    return {rep: {c: float(v[0]) for c, v in cols.items() if c in keys and len(v)} for rep, cols in columns.items()}


def load_runs(paths) -> list[Run]:
    runs = []
    for m in find_metrics(paths):
        d = os.path.dirname(m)
        config, columns = read_config(d), read_metrics(m)
        runs.append(Run(d, config, columns, swept_values(config, columns)))
    if not runs:
        raise FileNotFoundError(f"no metrics.csv under {', '.join(map(str, paths))}")
    return runs


# ----------------------------------------------------------------------------- group


def get_key(cfg: dict, dotted: str):
    node = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _flatten(cfg, prefix="") -> dict:
    out = {}
    for k, v in (cfg or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = json.dumps(v, sort_keys=True)
    return out


def varying_keys(runs: list[Run]) -> list[str]:
    """Config keys whose values differ between replicates (seeds and bookkeeping excluded;
    a vmapped sweep's keys vary within one run), keeping only keys that split the
    replicates further than the ones already chosen (`*.name` keys first), so estimator.name
    is not repeated as estimator.weight/.baseline."""
    flats = [r.flat(rep) for r in runs for rep in r.columns]
    keys = sorted(set().union(*flats)) if flats else []
    varying = [k for k in keys if k not in IGNORED_KEYS and len({f.get(k) for f in flats}) > 1]
    varying.sort(key=lambda k: (not k.endswith(".name"), k))
    chosen: list[str] = []
    for k in varying:
        before = len({tuple(f.get(c) for c in chosen) for f in flats})
        after = len({tuple(f.get(c) for c in chosen + [k]) for f in flats})
        if after > before:
            chosen.append(k)
    return chosen


def pooled_keys(runs: list[Run], keys: list[str]) -> dict[str, list]:
    """The varying config keys (`varying_keys`) that `keys` leave unsplit: {key: its distinct
    values} for each key whose value differs between replicates of one group, e.g. grouping a
    sweep over optimizer.lr and gamma by optimizer.lr alone pools {"gamma": [0.9, 0.99]}."""
    flats = {(id(r), rep): r.flat(rep) for r in runs for rep in r.columns}
    out = {}
    for k in varying_keys(runs):
        if k in keys:
            continue
        inside: dict[tuple, set] = {}
        for r in runs:
            for rep in r.columns:
                f = flats[(id(r), rep)]
                inside.setdefault(tuple(f.get(c) for c in keys), set()).add(f.get(k))
        if any(len(v) > 1 for v in inside.values()):
            values = {json.dumps(r.value(rep, k), sort_keys=True): r.value(rep, k) for r in runs for rep in r.columns}
            out[k] = [values[v] for v in sorted(values, key=lambda v: (math.isnan(_num(v)), np.nan_to_num(_num(v)), v))]
    return out


def pooled_note(pooled: dict[str, list]) -> str:
    """'gamma ∈ {0.9, 0.99}; estimator.name ∈ {...}' ('' when nothing is pooled)."""
    return "; ".join(f"{k} ∈ {{{', '.join(map(str, v))}}}" for k, v in pooled.items())


def group_runs(runs: list[Run], keys: list[str]) -> dict[str, list[tuple[Run, Replicate]]]:
    """label -> replicates (run, (point, seed)), label = "k1=v1, k2=v2" (insertion-ordered)."""
    groups: dict[str, list] = {}
    for r in runs:
        for rep in sorted(r.columns):
            label = ", ".join(f"{k}={r.value(rep, k)}" for k in keys) if keys else "all runs"
            groups.setdefault(label, []).append((r, rep))
    return groups


# ----------------------------------------------------------------------------- stats


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(y) < 2:
        return y
    k = np.ones(min(window, len(y)))
    num = np.convolve(np.nan_to_num(y), k, mode="full")[: len(y)]
    den = np.convolve(np.isfinite(y).astype(float), k, mode="full")[: len(y)]
    return num / np.maximum(den, 1)  # trailing moving average


def curve_matrix(reps, x: str, y: str, smooth: int = 1, grid_points: int = 200):
    """Replicates -> (x grid [K], Y [n, K]) aligned on iteration, or interpolated on env_steps."""
    series = [(r.columns[s][x], _smooth(r.columns[s][y], smooth)) for r, s in reps]
    if x == "iteration":
        K = min(len(xs) for xs, _ in series)
        return series[0][0][:K], np.stack([ys[:K] for _, ys in series])
    end = min(np.nanmax(xs) for xs, _ in series)
    start = max(np.nanmin(xs) for xs, _ in series)
    grid = np.linspace(start, end, grid_points)
    return grid, np.stack([np.interp(grid, xs, ys) for xs, ys in series])


def final_scores(groups, y: str = "return_mean", last_k: int = 10, n_boot: int = N_BOOT) -> list[dict]:
    """Per group: the per-replicate mean of y over its last `last_k` iterations, summarised."""
    rows = []
    for label, reps in groups.items():
        v = np.array([np.nanmean(r.columns[s][y][-last_k:]) for r, s in reps])
        lo, hi = bootstrap_ci(v[:, None], "mean", n_boot)
        ilo, ihi = bootstrap_ci(v[:, None], "iqm", n_boot)
        rows.append({"group": label, "n": len(v), "mean": float(v.mean()), "ci_lo": float(lo[0]),
                     "ci_hi": float(hi[0]), "iqm": float(iqm(v)), "iqm_ci_lo": float(ilo[0]),
                     "iqm_ci_hi": float(ihi[0]), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                     "metric": y, "last_k": last_k})
    return rows


def markdown_table(rows: list[dict]) -> str:
    y, k = (rows[0]["metric"], rows[0]["last_k"]) if rows else ("", 0)
    out = [f"| group | n | mean {y} (last {k}) | 95% CI | IQM | IQM 95% CI |", "|---|---:|---:|---|---:|---|"]
    for r in rows:
        out.append(f"| {r['group']} | {r['n']} | {r['mean']:.4g} | [{r['ci_lo']:.4g}, {r['ci_hi']:.4g}] | "
                   f"{r['iqm']:.4g} | [{r['iqm_ci_lo']:.4g}, {r['iqm_ci_hi']:.4g}] |")
    return "\n".join(out)


# ------------------------------------------------------------------------------ plot


def plot_curves(groups, out_dir: str, x: str = "iteration", y: str = "return_mean", stat: str = "mean",
                smooth: int = 1, n_boot: int = N_BOOT, title: str | None = None, threshold: float | None = None,
                formats=("png", "svg"), name: str = "learning_curves", legend_title: str | None = None) -> list[str]:
    """One line per group (stat over replicates) with its 95 % bootstrap band; the legend (titled
    `legend_title`, e.g. what each group pools) outside the axes, right of them, so that it
    covers no curve however many groups there are."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for i, (label, reps) in enumerate(groups.items()):
        xs, Y = curve_matrix(reps, x, y, smooth)
        centre = STATS[stat](Y, axis=0)
        lo, hi = bootstrap_ci(Y, stat, n_boot)
        ax.plot(xs, centre, color=f"C{i % 10}", label=f"{label} (n={len(reps)})")
        if len(reps) > 1:
            ax.fill_between(xs, lo, hi, color=f"C{i % 10}", alpha=0.2, linewidth=0)
    if threshold is not None:
        ax.axhline(threshold, color="k", ls=":", lw=1)
    ax.set_xlabel(x)
    ax.set_ylabel(f"{y} ({stat} over seeds, 95% bootstrap CI)")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, title=legend_title, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0),
              borderaxespad=0.0)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for ext in formats:
        p = os.path.join(out_dir, f"{name}.{ext}")
        fig.savefig(p, dpi=120, bbox_inches="tight")  # the legend outside the axes is kept whole
        paths.append(p)
    plt.close(fig)
    return paths


def write_scores(rows: list[dict], out_dir: str, name: str = "final_scores") -> list[str]:
    os.makedirs(out_dir, exist_ok=True)
    p_csv, p_md = os.path.join(out_dir, f"{name}.csv"), os.path.join(out_dir, f"{name}.md")
    with open(p_csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with open(p_md, "w") as f:
        f.write(markdown_table(rows) + "\n")
    return [p_csv, p_md]


def plot_runs(paths, out_dir: str | None = None, group_by=None, x: str = "iteration", y: str = "return_mean",
              stat: str = "mean", last_k: int = 10, smooth: int = 1, n_boot: int = N_BOOT,
              title: str | None = None, formats=("png", "svg")) -> dict:
    """Load, group, plot and score: the whole of `pgrun-plot` as a function."""
    runs = load_runs(paths)
    for r in runs:
        for cols in r.columns.values():
            for c in (x, y):
                if c not in cols:
                    raise KeyError(f"column {c!r} not in {r.path}/metrics.csv; columns: {', '.join(cols)}")
    keys = list(group_by) if group_by else varying_keys(runs)
    groups = group_runs(runs, keys)
    pooled = pooled_keys(runs, keys)
    out_dir = out_dir or os.path.join(str(paths[0]) if os.path.isdir(paths[0]) else ".", "plots")
    figs = plot_curves(groups, out_dir, x, y, stat, smooth, n_boot, title, formats=formats,
                       legend_title=f"pooled in each group: {pooled_note(pooled)}" if pooled else None)
    rows = final_scores(groups, y, last_k, n_boot)
    tables = write_scores(rows, out_dir)
    return {"runs": len(runs), "group_by": keys, "groups": {k: len(v) for k, v in groups.items()},
            "pooled": pooled, "scores": rows, "files": figs + tables}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="pgrun-plot", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", help="run dirs, multirun dirs, or metrics.csv files")
    p.add_argument("--group-by", nargs="+", default=None, metavar="KEY",
                   help="config keys to group by (dotted, e.g. estimator.name optimizer.lr); "
                        "default: every key that differs between runs, each swept key included; "
                        "keys left out are pooled within the groups (printed, and named in the legend)")
    p.add_argument("--x", default="iteration", help="x column: iteration (default) or env_steps")
    p.add_argument("--y", default="return_mean", help="metrics.csv column to plot (default return_mean)")
    p.add_argument("--stat", choices=sorted(STATS), default="mean", help="mean (default) or iqm over seeds")
    p.add_argument("--last-k", type=int, default=10, help="iterations averaged for the final score")
    p.add_argument("--smooth", type=int, default=1, help="trailing moving-average window (iterations)")
    p.add_argument("--n-boot", type=int, default=N_BOOT, help="bootstrap resamples")
    p.add_argument("--out", default=None, help="output directory (default: <first path>/plots)")
    p.add_argument("--title", default=None)
    p.add_argument("--formats", nargs="+", default=["png", "svg"])
    a = p.parse_args(argv)
    try:
        res = plot_runs(a.paths, a.out, a.group_by, a.x, a.y, a.stat, a.last_k, a.smooth, a.n_boot,
                        a.title, tuple(a.formats))
    except (FileNotFoundError, KeyError) as e:
        print(f"pgrun-plot: {e.args[0] if e.args else e}", file=sys.stderr)
        sys.exit(2)
    print(f"{res['runs']} run(s), grouped by {res['group_by'] or '(nothing)'}")
    if res["pooled"]:
        print(f"pooled in each group (n counts them all): {pooled_note(res['pooled'])}; add "
              f"{' '.join(res['pooled'])} to --group-by to separate them")
    print(markdown_table(res["scores"]))
    print("wrote " + ", ".join(res["files"]))


if __name__ == "__main__":
    main()
