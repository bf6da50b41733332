"""`pgrun-compare`: estimators compared across envs with the statistics of Agarwal et al. 2021.

    pgrun-compare multirun/2026-01-01/12-00-00 --out compare/ --html compare/report.html
    pgrun-compare runs/* --by estimator.name --tidy runs.csv

Every `metrics.csv` under the paths is a run (single runs with vmapped seeds and Hydra
multirun directories alike, as pgrun-plot reads them); a replicate is one (run, sweep point,
seed). Replicates are grouped into methods by `--by` (default estimator.name) and tasks by env
(`env=gym:<id>` and `func:` envs by their id). A replicate's score is the mean of `--y`
(return_mean) over its last `--last-k` iterations, normalised per env as
(score − random) / (solved − random) with the env registry's random-policy score and solved
threshold (pgrun/envs/reference_scores.py; `--ref ENV=RANDOM,SOLVED` for others).

Writes into `--out`: aggregates.png (IQM and mean with stratified bootstrap 95 % CIs),
profiles.png (performance profiles with bands), improvement.png (P(X > Y) for every pair),
curves.png (IQM of the normalised score per iteration, or per env step with --x env_steps,
with bands), compare.json and compare.md;
`--html` one self-contained HTML file of all of it; `--tidy` the long table
run, env, estimator, seed, step, metric, value (CSV, or Parquet for a .parquet name).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass

import numpy as np

from pgrun.envs.reference_scores import reference_scores
from pgrun.report import rlstats
from pgrun.report.plot import Run, get_key, load_runs

TIDY_COLUMNS = ("run", "env", "estimator", "seed", "step", "metric", "value")
SKIP_COLUMNS = ("iteration", "seed", "point")


class CompareError(ValueError):
    """Runs that cannot be compared as asked (exit status 2)."""


@dataclass
class Replicate:
    run: str            # the run directory (relative to the common root), '#p<point>' for a sweep point
    env: str
    method: str
    seed: int
    columns: dict[str, np.ndarray]
    solved: float | None   # summary.json's solved_threshold (None when absent)
    changed: str = ""      # the env settings the run changed (env.params, env.max_episode_steps); "" if none


def env_label(run: Run) -> str:
    name = get_key(run.config, "env.name")
    if name in ("gym", "func") and get_key(run.config, "env.id"):
        return f"{name}:{get_key(run.config, 'env.id')}"
    summary = _summary(run.path)
    return str(name or summary.get("env") or "unknown")


def env_changes(run: Run) -> str:
    """The env settings a run changed from the env's defaults, which the registry's reference
    scores assume: 'env.params.x=1, env.max_episode_steps=50', or '' for none."""
    changed = [f"env.params.{k}={v}" for k, v in sorted((get_key(run.config, "env.params") or {}).items())]
    if get_key(run.config, "env.max_episode_steps") is not None:
        changed.append(f"env.max_episode_steps={get_key(run.config, 'env.max_episode_steps')}")
    return ", ".join(changed)


def _summary(run_dir: str) -> dict:
    p = os.path.join(run_dir, "summary.json")
    if os.path.isfile(p):
        with open(p) as f:
            return json.load(f)
    return {}


def collect(paths, by: str = "estimator.name") -> list[Replicate]:
    runs = load_runs(paths)
    root = os.path.commonpath([r.path for r in runs]) if len(runs) > 1 else os.path.dirname(runs[0].path)
    reps = []
    for r in runs:
        rel = os.path.relpath(r.path, root)
        solved = _summary(r.path).get("solved_threshold")
        swept = len({point for point, _ in r.columns}) > 1
        for (point, seed), cols in sorted(r.columns.items()):
            run = f"{rel}#p{point}" if swept else rel
            reps.append(Replicate(run, env_label(r), str(r.value((point, seed), by)), seed, cols, solved,
                                  env_changes(r)))
    return reps


def parse_refs(items) -> dict[str, tuple[float, float]]:
    """['Chain=0,10'] -> {'Chain': (0.0, 10.0)}."""
    out = {}
    for it in items or []:
        try:
            env, vals = it.split("=", 1)
            lo, hi = (float(v) for v in vals.split(","))
        except ValueError as e:
            raise CompareError(f"--ref {it!r}: expected ENV=RANDOM,SOLVED, e.g. --ref Chain=0,10") from e
        out[env] = (lo, hi)
    return out


def references(reps: list[Replicate], overrides: dict) -> dict[str, tuple[float, float]]:
    """env -> (random, solved): --ref first, then the registry (solved: summary.json's threshold first)."""
    out, missing = {}, []
    for env in sorted({r.env for r in reps}):
        if env in overrides:
            out[env] = overrides[env]
            continue
        random, solved = reference_scores(env)
        changed = next((r.changed for r in reps if r.env == env and r.changed), "")
        if changed and random is not None:  # the registry's scores are for the default env
            missing.append(f"{env} with {changed} (the registry's scores are for its defaults)")
            continue
        solved = next((r.solved for r in reps if r.env == env and r.solved is not None), solved)
        if random is None or solved is None:
            missing.append(f"{env} (random {random}, solved {solved})")
        else:
            out[env] = (float(random), float(solved))
    if missing:
        raise CompareError(
            f"no random-policy score or solved threshold for {', '.join(missing)}: the normalised score "
            "(score - random) / (solved - random) needs both. Give them with --ref ENV=RANDOM,SOLVED "
            "(e.g. --ref Chain=0,10), measure the random score with scripts/random_scores.py, or compare raw "
            "returns with --raw.")
    return out


def curve_grid(reps: list[Replicate], x: str, y: str, points: int = 100):
    """The curves' x axis and each replicate's y on it: x = iteration, cut to the shortest run;
    x = env_steps, each replicate linearly interpolated onto `points` steps spanning the range
    every replicate covers. -> (grid [K], {id(replicate): y [K]})."""
    if x == "iteration":
        K = min(len(r.columns[y]) for r in reps)
        grid = reps[0].columns["iteration"][:K] if "iteration" in reps[0].columns else np.arange(1, K + 1)
        return grid, {id(r): r.columns[y][:K] for r in reps}
    if any(x not in r.columns for r in reps):
        raise CompareError(f"--x {x}: not a column of every run's metrics.csv; use iteration or env_steps")
    grid = np.linspace(max(r.columns[x][0] for r in reps), min(r.columns[x][-1] for r in reps), points)
    return grid, {id(r): np.interp(grid, r.columns[x], r.columns[y]) for r in reps}


def score_matrices(reps: list[Replicate], y: str, last_k: int, refs: dict | None, x: str = "iteration"):
    """-> envs, methods, finals {method: S [R, T]}, curves {method: C [R, T, K]}, steps [K].
    Every (method, env) must have the same number of replicates R_m (stratified bootstrap over a
    [R, T] matrix); curves on `curve_grid`'s x axis."""
    envs = sorted({r.env for r in reps})
    methods = list(dict.fromkeys(r.method for r in reps))
    cells: dict[tuple[str, str], list[Replicate]] = {}
    for r in reps:
        if y not in r.columns:
            raise CompareError(f"column {y!r} not in run {r.run}'s metrics.csv; columns: {', '.join(r.columns)}")
        cells.setdefault((r.method, r.env), []).append(r)
    counts = {m: {e: len(cells.get((m, e), [])) for e in envs} for m in methods}
    bad = {m: c for m, c in counts.items() if len(set(c.values())) != 1 or 0 in c.values()}
    if bad:
        raise CompareError(f"every method needs the same number of runs on every env (runs are resampled within "
                           f"each env); got {json.dumps(bad)}. Add the missing runs or leave those paths out.")
    steps, on_grid = curve_grid(reps, x, y)
    finals, curves = {}, {}
    for m in methods:
        S = np.stack([[np.nanmean(r.columns[y][-last_k:]) for r in cells[(m, e)]] for e in envs], axis=1)
        C = np.stack([[on_grid[id(r)] for r in cells[(m, e)]] for e in envs], axis=1)
        if refs is not None:
            for t, e in enumerate(envs):
                S[:, t] = rlstats.normalise(S[:, t], *refs[e])
                C[:, t] = rlstats.normalise(C[:, t], *refs[e])
        finals[m], curves[m] = S, C
    return envs, methods, finals, curves, steps


def statistics(finals: dict, curves: dict, n_boot: int, taus) -> dict:
    out: dict = {"aggregates": {}, "profiles": {}, "improvement": {}, "curves": {}}
    for m, S in finals.items():
        out["aggregates"][m] = {s: list(rlstats.aggregate_ci(S, s, n_boot)) for s in ("iqm", "mean")}
        p, lo, hi = rlstats.performance_profile_ci(S, taus, n_boot)
        out["profiles"][m] = {"tau": list(map(float, taus)), "p": p.tolist(), "lo": lo.tolist(), "hi": hi.tolist()}
        c, clo, chi = rlstats.curve_iqm_ci(curves[m], n_boot)
        out["curves"][m] = {"iqm": c.tolist(), "lo": clo.tolist(), "hi": chi.tolist()}
    for x in finals:
        for y in finals:
            if x != y:
                out["improvement"][f"{x} > {y}"] = list(rlstats.probability_of_improvement_ci(finals[x], finals[y],
                                                                                              n_boot))
    return out


# ------------------------------------------------------------------------------ figures


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def fig_aggregates(st: dict, unit: str):
    plt = _plt()
    methods = list(st["aggregates"])
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.5 + 0.45 * len(methods) + 1), sharey=True)
    for ax, s in zip(axes, ("iqm", "mean")):
        for i, m in enumerate(methods):
            v, lo, hi = st["aggregates"][m][s]
            ax.barh(i, hi - lo, left=lo, height=0.6, color=f"C{i % 10}", alpha=0.5)
            ax.plot([v, v], [i - 0.3, i + 0.3], color="k", lw=2)
        ax.set_yticks(range(len(methods)), methods)
        ax.set_title(f"{s.upper() if s == 'iqm' else 'Mean'} ({unit})")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("final score, stratified bootstrap 95% CI over runs", fontsize=9)
    fig.tight_layout()
    return fig


def fig_profiles(st: dict, unit: str):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, (m, p) in enumerate(st["profiles"].items()):
        ax.plot(p["tau"], p["p"], color=f"C{i % 10}", label=m)
        ax.fill_between(p["tau"], p["lo"], p["hi"], color=f"C{i % 10}", alpha=0.2, linewidth=0)
    ax.set_xlabel(f"τ ({unit})")
    ax.set_ylabel("fraction of runs with score > τ")
    ax.set_title("performance profiles (95% stratified bootstrap bands)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def improvement_matrix(st: dict, methods: list[str]) -> np.ndarray:
    M = np.full((len(methods), len(methods)), np.nan)
    for i, x in enumerate(methods):
        for j, y in enumerate(methods):
            if x != y:
                M[i, j] = st["improvement"][f"{x} > {y}"][0]
    return M


def fig_improvement(st: dict, methods: list[str]):
    plt = _plt()
    M = improvement_matrix(st, methods)
    n = len(methods)
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * n, 1.2 + 1.1 * n))
    im = ax.imshow(M, cmap="RdBu", vmin=0, vmax=1)
    for i, x in enumerate(methods):
        for j, y in enumerate(methods):
            if x != y:
                v, lo, hi = st["improvement"][f"{x} > {y}"]
                ax.text(j, i, f"{v:.2f}\n[{lo:.2f}, {hi:.2f}]", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(n), methods, rotation=30, ha="right")
    ax.set_yticks(range(n), methods)
    ax.set_xlabel("Y")
    ax.set_ylabel("X")
    ax.set_title("P(X > Y), 95% stratified bootstrap CI", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def fig_curves(st: dict, steps, unit: str, x: str = "iteration"):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, (m, c) in enumerate(st["curves"].items()):
        ax.plot(steps, c["iqm"], color=f"C{i % 10}", label=m)
        ax.fill_between(steps, c["lo"], c["hi"], color=f"C{i % 10}", alpha=0.2, linewidth=0)
    ax.set_xlabel(x)
    ax.set_ylabel(f"IQM {unit}")
    ax.set_title("sample efficiency: IQM over runs × envs, 95% stratified bootstrap bands", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------ tidy


def tidy_rows(reps: list[Replicate]):
    """The long table: one row per (replicate, iteration, metrics column), NaN cells left out.
    step is the iteration; env_steps is a metric like the others."""
    for r in reps:
        steps = r.columns.get("iteration", np.arange(1, len(next(iter(r.columns.values()))) + 1))
        for metric, vals in r.columns.items():
            if metric in SKIP_COLUMNS:
                continue
            for s, v in zip(steps, vals):
                if np.isfinite(v):
                    yield {"run": r.run, "env": r.env, "estimator": r.method, "seed": r.seed, "step": int(s),
                           "metric": metric, "value": float(v)}


def write_tidy(reps: list[Replicate], path: str) -> str:
    """CSV, or Parquet when `path` ends in .parquet (needs pyarrow)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if path.endswith(".parquet"):
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as e:
            raise CompareError(f"--tidy {path}: Parquet needs pyarrow (pip install pyarrow); "
                               "give a .csv name for CSV") from e
        rows = list(tidy_rows(reps))
        pq.write_table(pa.table({c: [r[c] for r in rows] for c in TIDY_COLUMNS}), path)
        return path
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(TIDY_COLUMNS))
        w.writeheader()
        w.writerows(tidy_rows(reps))
    return path


# ------------------------------------------------------------------------------ main


def train_command(run_dir: str) -> str:
    """`pgrun <overrides>` from the run's .hydra/overrides.yaml ('(no .hydra/overrides.yaml)' without one)."""
    p = os.path.join(run_dir, ".hydra", "overrides.yaml")
    if not os.path.isfile(p):
        return "(no .hydra/overrides.yaml)"
    from omegaconf import OmegaConf
    overrides = OmegaConf.to_container(OmegaConf.load(p)) or []
    return "pgrun " + " ".join(shlex.quote(str(o)) for o in overrides)


def _ci_cells(v) -> list[str]:
    return [f"{v[0]:.3f}", f"[{v[1]:.3f}, {v[2]:.3f}]"]


def markdown(st: dict, envs, refs, methods, n_runs: dict, unit: str) -> str:
    lines = [f"Envs: {', '.join(envs)}" + ("; normalised (score − random) / (solved − random) with "
                                          + ", ".join(f"{e}: random {refs[e][0]:g}, solved {refs[e][1]:g}"
                                                      for e in envs) if refs else "; raw returns"), "",
             f"| method | runs per env | IQM ({unit}) | 95% CI | mean | 95% CI |", "|---|---:|---:|---|---:|---|"]
    for m in methods:
        (v, lo, hi), (mv, mlo, mhi) = st["aggregates"][m]["iqm"], st["aggregates"][m]["mean"]
        lines.append(f"| {m} | {n_runs[m]} | {v:.3f} | [{lo:.3f}, {hi:.3f}] | {mv:.3f} | [{mlo:.3f}, {mhi:.3f}] |")
    lines += ["", "P(X > Y) (row X, column Y), 95% CI:", "", "| X \\ Y | " + " | ".join(methods) + " |",
              "|---|" + "---|" * len(methods)]
    for x in methods:
        cells = ["—" if x == y else "{:.2f} [{:.2f}, {:.2f}]".format(*st["improvement"][f"{x} > {y}"])
                 for y in methods]
        lines.append(f"| {x} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare(paths, out: str, by: str = "estimator.name", y: str = "return_mean", last_k: int = 10,
            n_boot: int = rlstats.N_BOOT, refs_override=None, raw: bool = False, html_path: str | None = None,
            tidy: str | None = None, command: str | None = None, x: str = "iteration") -> dict:
    """The whole of pgrun-compare as a function; returns the statistics and the files written."""
    t0 = time.perf_counter()
    reps = collect(paths, by)
    refs = None if raw else references(reps, refs_override or {})
    envs, methods, finals, curves, steps = score_matrices(reps, y, last_k, refs, x)
    unit = y if raw else "normalised score"
    hi = max(1.0, max(float(np.nanmax(S)) for S in finals.values()))
    lo = min(0.0, min(float(np.nanmin(S)) for S in finals.values()))
    taus = np.linspace(lo, hi, 101)
    st = statistics(finals, curves, n_boot, taus)
    os.makedirs(out, exist_ok=True)
    command = command or "pgrun-compare " + " ".join(shlex.quote(str(p)) for p in paths)
    figs = {"aggregates": fig_aggregates(st, unit), "profiles": fig_profiles(st, unit),
            "improvement": fig_improvement(st, methods), "curves": fig_curves(st, steps, unit, x)}
    from pgrun.report.html import Figure, Page, config_block, fig_png
    pngs = {}
    for k, fig in figs.items():
        pngs[k] = fig_png(fig)
        with open(os.path.join(out, f"{k}.png"), "wb") as f:
            f.write(pngs[k])
        fig.clf()
    _plt().close("all")
    n_runs = {m: finals[m].shape[0] for m in methods}
    md = markdown(st, envs, refs, methods, n_runs, unit)
    result = {"envs": envs, "methods": methods, "by": by, "metric": y, "last_k": last_k, "n_boot": n_boot,
              "references": refs, "runs_per_env": n_runs, "scores": {m: S.tolist() for m, S in finals.items()},
              "x": x, "steps": list(map(float, steps)), **st, "command": command}
    files = [os.path.join(out, f"{k}.png") for k in figs]
    with open(os.path.join(out, "compare.json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(out, "compare.md"), "w") as f:
        f.write(md + "\n")
    files += [os.path.join(out, "compare.json"), os.path.join(out, "compare.md")]
    if tidy:
        files.append(write_tidy(reps, tidy))
    if html_path:
        page = Page(f"pgrun-compare: {', '.join(methods)} on {', '.join(envs)}")
        page.paragraph(f"{len(reps)} replicates; score = mean {y} over the last {last_k} iterations"
                       + ("" if raw else ", normalised per env") + f"; {n_boot} bootstrap resamples.")
        page.heading("Aggregates")
        if refs:
            page.table(["env", "random", "solved"], [[e, f"{refs[e][0]:g}", f"{refs[e][1]:g}"] for e in envs],
                       cls="references")
        page.table([f"method ({unit})", "runs per env", "IQM", "95% CI", "mean", "95% CI"],
                   [[m, n_runs[m], *_ci_cells(st["aggregates"][m]["iqm"]), *_ci_cells(st["aggregates"][m]["mean"])]
                    for m in methods], cls="aggregates")
        page.paragraph("Probability of improvement P(X > Y), row X, column Y, with 95% CI:")
        page.table(["X \\ Y", *methods],
                   [[x, *("—" if x == y else "{:.2f} [{:.2f}, {:.2f}]".format(*st["improvement"][f"{x} > {y}"])
                          for y in methods)] for x in methods], cls="improvement")
        captions = {"aggregates": "IQM and mean of the final score with stratified bootstrap 95% CIs",
                    "profiles": "performance profiles: fraction of runs with score > τ",
                    "improvement": "probability of improvement P(X > Y) for every pair",
                    "curves": f"sample-efficiency curves: IQM against {x}"}
        page.heading("Figures")
        for k in figs:
            page.add_figure(Figure(k, captions[k], pngs[k], command + f"  # -> {out}/{k}.png"))
        page.heading("Runs and configs")
        page.paragraph("The command that trained each run (its Hydra overrides), then its config:")
        page.table(["run", "command"], [[r.path, train_command(r.path)] for r in load_runs(paths)], cls="runs")
        for r in load_runs(paths):
            page.pre(config_block(r.config), summary=f"{r.path} ({env_label(r)}, {by}={get_key(r.config, by)})")
        page.provenance(command)
        files.append(page.write(html_path))
    result["files"] = files
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def main(argv=None) -> None:
    doc = (__doc__ or "").split("\n\n", 1)
    p = argparse.ArgumentParser(prog="pgrun-compare", description=doc[0], epilog=doc[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", help="run dirs, multirun dirs, or metrics.csv files")
    p.add_argument("--by", default="estimator.name", help="config key naming the methods (default estimator.name)")
    p.add_argument("--y", default="return_mean", help="metrics.csv column scored (default return_mean)")
    p.add_argument("--x", default="iteration", choices=("iteration", "env_steps"),
                   help="sample-efficiency curves against iteration (default) or env_steps (interpolated)")
    p.add_argument("--last-k", type=int, default=10, help="iterations averaged for the final score")
    p.add_argument("--n-boot", type=int, default=rlstats.N_BOOT, help="bootstrap resamples")
    p.add_argument("--ref", action="append", default=None, metavar="ENV=RANDOM,SOLVED",
                   help="random score and solved threshold of an env (overrides the registry; repeat per env)")
    p.add_argument("--raw", action="store_true", help="do not normalise (one env, or envs on one scale)")
    p.add_argument("--out", default="compare", help="output directory (default: compare)")
    p.add_argument("--html", default=None, help="also write one self-contained HTML report here")
    p.add_argument("--tidy", default=None, help="also write the long table here (.csv, or .parquet with pyarrow)")
    a = p.parse_args(argv)
    command = "pgrun-compare " + " ".join(shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
    try:
        res = compare(a.paths, a.out, a.by, a.y, a.last_k, a.n_boot, parse_refs(a.ref), a.raw, a.html, a.tidy,
                      command, a.x)
    except (CompareError, FileNotFoundError) as e:
        print(f"pgrun-compare: {e.args[0] if e.args else e}", file=sys.stderr)
        sys.exit(2)
    with open(os.path.join(a.out, "compare.md")) as f:
        print(f.read().rstrip())
    print(f"wrote {', '.join(res['files'])} ({res['seconds']} s)")


if __name__ == "__main__":
    main()
