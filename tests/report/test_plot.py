"""pgrun-plot on real small runs: one run with vmapped seeds, a Hydra multirun, a vmapped sweep."""

import csv
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT as REPO

from pgrun.report import plot

ROOT = str(REPO)


@pytest.fixture(scope="module")
def multirun(tmp_path_factory):
    """A real Hydra multirun (pgrun's Hydra app, this checkout's configs): 2 estimators, each one
    run of 4 vmapped seeds."""
    out = tmp_path_factory.mktemp("multi")
    code = ("import sys; from pgrun.cli import _main; sys.argv = ['pgrun', '--config-dir', sys.argv[1], '-m', "
            "'env=Bandit', 'policy=softmax_linear', 'estimator=reinforce,baseline', 'num_seeds=4', 'iterations=12', "
            "'log_every=6', 'episodes_per_iteration=8', 'progress=false', 'hydra.sweep.dir=' + sys.argv[2]]; _main()")
    subprocess.run([sys.executable, "-c", code, os.path.join(ROOT, "configs"), str(out)], cwd=ROOT, check=True,
                   capture_output=True, env=dict(os.environ, PYTHONPATH=ROOT))
    return out


@pytest.fixture(scope="module")
def single_run(multirun, tmp_path_factory):
    """One job of the multirun, copied without its .hydra/ (config from summary.json)."""
    out = tmp_path_factory.mktemp("single") / "run"
    shutil.copytree(multirun / "0", out)
    shutil.rmtree(out / ".hydra")
    return out


def test_single_run_with_vmapped_seeds(single_run, tmp_path):
    assert plot.read_config(str(single_run))["estimator"]["name"] == "reinforce"  # from summary.json
    res = plot.plot_runs([str(single_run)], out_dir=str(tmp_path), last_k=4, n_boot=200)
    assert res["runs"] == 1 and res["groups"] == {"all runs": 4}
    for f in ("learning_curves.png", "learning_curves.svg", "final_scores.csv", "final_scores.md"):
        assert os.path.getsize(tmp_path / f) > 0
    # the final score is the mean over seeds of each seed's mean return over its last 4 iterations
    rows = list(csv.DictReader(open(single_run / "metrics.csv")))
    per_seed = {}
    for r in rows:
        per_seed.setdefault(r["seed"], []).append((int(r["iteration"]), float(r["return_mean"])))
    finals = [np.mean([v for _, v in sorted(x)[-4:]]) for x in per_seed.values()]
    score = res["scores"][0]
    assert score["n"] == 4 and score["mean"] == pytest.approx(np.mean(finals))
    assert score["ci_lo"] <= score["mean"] <= score["ci_hi"]
    assert "| all runs | 4 |" in open(tmp_path / "final_scores.md").read()



def test_summary_json_and_pgrun_plot_report_the_same_interval(single_run, tmp_path):
    """One method everywhere (pgrun.runner.stats): the run's summary.json CI of the final return and
    pgrun-plot's final-score CI of the same seeds over the same last 10 iterations are one interval,
    and it lies within [min, max] of the per-seed values (a percentile bootstrap of a mean does)."""
    import json

    summary = json.load(open(single_run / "summary.json"))
    res = plot.plot_runs([str(single_run)], out_dir=str(tmp_path), last_k=10)  # default resamples and seed
    score = res["scores"][0]
    assert score["n"] == 4
    assert [score["ci_lo"], score["ci_hi"]] == pytest.approx(summary["final_return_ci95"], rel=1e-5)
    finals = list(summary["final_return_per_seed"].values())
    assert min(finals) <= score["ci_lo"] <= score["mean"] <= score["ci_hi"] <= max(finals)


def test_bootstrap_ci_of_a_bounded_metric_stays_within_the_data():
    """Returns capped at 500 (CartPole): Student-t on these gives mean ± t·s/√n = 383.5 ± 3.18 · 233 / 2,
    i.e. [12.7, 754.3], past the cap; the percentile bootstrap stays inside [min, max]; with two
    values its 2.5 % / 97.5 % percentiles are exactly the two values (resampled means a, (a+b)/2, b
    with probabilities ¼, ½, ¼); the interval is the same on every call (fixed seed)."""
    from pgrun.runner.stats import mean_ci

    x = np.array([500.0, 500.0, 500.0, 34.0])
    lo, hi = mean_ci(x)
    assert 34.0 <= lo < x.mean() < hi <= 500.0 and (lo, hi) == mean_ci(x)
    assert mean_ci(np.array([3.0, 7.0])) == (3.0, 7.0)
    assert mean_ci(np.array([5.0])) == (5.0, 5.0)


def test_hydra_multirun_grouped(multirun, tmp_path):
    assert len(plot.find_metrics([str(multirun)])) == 2
    assert plot.varying_keys(plot.load_runs([str(multirun)])) == ["estimator.name"]  # not .weight/.baseline
    res = plot.plot_runs([str(multirun)], out_dir=str(tmp_path), group_by=["estimator.name", "env.name"],
                         x="env_steps", y="length_mean", stat="iqm", n_boot=200)
    assert res["groups"] == {"estimator.name=reinforce, env.name=Bandit": 4,
                             "estimator.name=baseline, env.name=Bandit": 4}
    assert os.path.getsize(tmp_path / "learning_curves.svg") > 0


def test_cli(multirun, single_run, tmp_path, capsys):
    plot.main([str(multirun), str(single_run), "--group-by", "estimator.name", "--out", str(tmp_path),
               "--n-boot", "100", "--formats", "png"])
    out = capsys.readouterr().out
    assert "3 run(s)" in out and "estimator.name=reinforce | 8 |" in out  # the copy adds 4 seeds
    with pytest.raises(SystemExit) as e:
        plot.main([str(single_run), "--y", "no_such_column", "--out", str(tmp_path)])
    assert e.value.code == 2


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A real vmapped sweep: 2 learning rates x 2 gammas, 3 seeds each, in one run."""
    out = tmp_path_factory.mktemp("sweep") / "run"
    subprocess.run([sys.executable, "-m", "pgrun.cli", "env=Bandit", "policy=softmax_linear", "estimator=reinforce",
                    "sweep.optimizer.lr=[0.01,0.3]", "sweep.gamma=[0.9,0.99]", "num_seeds=3", "iterations=12",
                    "log_every=6", "episodes_per_iteration=8", "progress=false", f"hydra.run.dir={out}"],
                   cwd=ROOT, check=True, capture_output=True, env=dict(os.environ, PYTHONPATH=ROOT))
    return out


def test_sweep_points_are_replicates_of_their_own_values(sweep, tmp_path):
    """Each (point, seed) is one replicate with its point's swept values: grouping by a swept
    key splits the run by its metrics columns, and the scores are those of the point's rows."""
    (run,) = plot.load_runs([str(sweep)])
    assert len(run.columns) == 4 * 3 and sorted(run.columns)[:2] == [(0, 0), (0, 1)]
    assert plot.varying_keys([run]) == ["gamma", "optimizer.lr"]
    res = plot.plot_runs([str(sweep)], out_dir=str(tmp_path), group_by=["optimizer.lr"], last_k=4, n_boot=200)
    assert res["groups"] == {"optimizer.lr=0.01": 6, "optimizer.lr=0.3": 6}
    rows = list(csv.DictReader(open(sweep / "metrics.csv")))
    finals = {}
    for lr in ("0.01", "0.3"):
        per_rep = {}
        for r in rows:
            if float(r["optimizer.lr"]) == float(lr):
                per_rep.setdefault((r["point"], r["seed"]), []).append((int(r["iteration"]), float(r["return_mean"])))
        assert len(per_rep) == 6 and all(len(v) == 12 for v in per_rep.values())
        finals[lr] = np.mean([np.mean([v for _, v in sorted(x)[-4:]]) for x in per_rep.values()])
    scores = {s["group"]: s["mean"] for s in res["scores"]}
    assert scores["optimizer.lr=0.01"] == pytest.approx(finals["0.01"])
    assert scores["optimizer.lr=0.3"] == pytest.approx(finals["0.3"])
    assert finals["0.01"] != pytest.approx(finals["0.3"])  # the groups really are different runs
    by_point = plot.plot_runs([str(sweep)], out_dir=str(tmp_path), group_by=["point"], n_boot=100)
    assert by_point["groups"] == {f"point={p}": 3 for p in range(4)}


def test_bootstrap_ci_and_iqm():
    x = np.arange(1.0, 9.0)
    assert plot.iqm(x) == pytest.approx(4.5)  # mean of 3..6
    assert plot.iqm(np.array([0.0, 1.0, 2.0, 100.0])) == pytest.approx(1.5)
    lo, hi = plot.bootstrap_ci(np.stack([x, x + 1.0], axis=1), "mean", n_boot=500)
    assert lo[0] < x.mean() < hi[0] and lo[1] < x.mean() + 1 < hi[1]
    lo, hi = plot.bootstrap_ci(np.ones((4, 3)), "mean", n_boot=100)  # all replicates agree
    assert np.allclose(lo, 1.0) and np.allclose(hi, 1.0)
    lo, hi = plot.bootstrap_ci(np.ones((1, 3)))
    assert np.all(np.isnan(lo))


def test_sweep_grouped_by_every_swept_key_by_default(sweep, tmp_path):
    res = plot.plot_runs([str(sweep)], out_dir=str(tmp_path), n_boot=100, formats=("png",))
    assert res["group_by"] == ["gamma", "optimizer.lr"] and res["pooled"] == {}
    assert res["groups"] == {f"gamma={g}, optimizer.lr={lr}": 3 for g in (0.9, 0.99) for lr in (0.01, 0.3)}


def test_grouping_by_fewer_keys_says_what_is_pooled_and_the_legend_is_outside(sweep, tmp_path, capsys,
                                                                              monkeypatch):
    """A sweep over optimizer.lr x gamma grouped by optimizer.lr alone pools the two gammas in each
    group (n = 6 = 2 gammas x 3 seeds): the command says so, the legend's title says so, and the
    legend lies outside the axes (so it covers no band)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    real_close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: figures.append(fig))  # keep pgrun-plot's figure
    plot.main([str(sweep), "--group-by", "optimizer.lr", "--out", str(tmp_path), "--n-boot", "100",
               "--formats", "png"])
    out = capsys.readouterr().out
    assert "pooled in each group" in out and "gamma ∈ {0.9, 0.99}" in out and "optimizer.lr=0.01 | 6 |" in out
    assert "add gamma to --group-by" in out
    (fig,) = figures
    (ax,) = fig.axes
    legend = ax.get_legend()
    assert "gamma ∈ {0.9, 0.99}" in legend.get_title().get_text()
    assert [t.get_text() for t in legend.get_texts()] == ["optimizer.lr=0.01 (n=6)", "optimizer.lr=0.3 (n=6)"]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box, axes_box = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
    assert not box.overlaps(axes_box) and box.x0 >= axes_box.x1
    real_close(fig)
