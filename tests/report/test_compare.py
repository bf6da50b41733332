"""pgrun-compare: the statistics against hand-computed values, the tidy table, the HTML report,
and the command line in a subprocess on hand-written run directories (nothing is trained)."""

import csv
import json
import os
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pytest

from pgrun.envs.reference_scores import reference_scores
from pgrun.report import rlstats
from pgrun.report.claims import Claim, Section

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ------------------------------------------------------------------- hand-computed statistics


def test_iqm_trims_a_quarter_each_side_over_all_runs_and_tasks():
    S = np.array([[1, 2], [3, 4], [5, 6], [7, 100]])  # 8 scores: 1..7 and 100
    assert rlstats.iqm(S) == pytest.approx((3 + 4 + 5 + 6) / 4)  # 1, 2 and 7, 100 cut
    assert rlstats.mean(S) == pytest.approx(((1 + 3 + 5 + 7) / 4 + (2 + 4 + 6 + 100) / 4) / 2)


def test_probability_of_improvement_by_hand():
    # task 0: X = [1, 3], Y = [2, 2] -> pairs (1>2, 1>2, 3>2, 3>2) = 2/4
    # task 1: X = [2, 5], Y = [2, 1] -> (2=2: ½, 2>1, 5>2, 5>1) = 3.5/4
    X = np.array([[1, 2], [3, 5]])
    Y = np.array([[2, 2], [2, 1]])
    assert rlstats.probability_of_improvement(X, Y) == pytest.approx((0.5 + 0.875) / 2)
    assert rlstats.probability_of_improvement(Y, X) == pytest.approx(1 - (0.5 + 0.875) / 2)
    # different run counts: X 3 runs, Y 1 run, one task: 2 of 3 above
    assert rlstats.probability_of_improvement([[1], [4], [5]], [[3]]) == pytest.approx(2 / 3)


def test_performance_profile_by_hand():
    S = np.array([[0.1, 0.9], [0.5, 0.2], [1.2, 0.6], [0.3, 0.4]])
    # τ = 0.35: task 0 {0.5, 1.2} 2/4, task 1 {0.9, 0.6, 0.4} 3/4; τ = 0.5 (strict): 1/4 and 2/4
    np.testing.assert_allclose(rlstats.performance_profile(S, [0.35, 0.5, -1, 2]), [0.625, 0.375, 1.0, 0.0])


def test_curve_iqm_per_step_by_hand():
    # R = 4 runs, T = 1 task, K = 2 steps: step 0 scores 0, 1, 2, 10 -> IQM (1 + 2)/2; step 1 all 3
    S = np.array([[0, 3], [1, 3], [2, 3], [10, 3]], float)[:, None, :]
    point, lo, hi = rlstats.curve_iqm_ci(S, n_boot=200)
    np.testing.assert_allclose(point, [1.5, 3.0])
    assert lo[1] == hi[1] == 3.0 and lo[0] <= 1.5 <= hi[0] and lo[0] < hi[0]


def test_bootstrap_is_stratified_within_tasks():
    # every run of task 0 scores 0, of task 1 scores 1: resampling runs within tasks always gives a
    # mean of ½; resampling the 2R scores together (not stratified) would not
    S = np.array([[0.0, 1.0]] * 5)
    for stat in ("mean", "iqm"):
        v, lo, hi = rlstats.aggregate_ci(S, stat, n_boot=300)
        assert v == lo == hi == 0.5
    p, plo, phi = rlstats.performance_profile_ci(S, [0.5], n_boot=300)
    assert p[0] == plo[0] == phi[0] == 0.5


def test_bootstrap_ci_brackets_the_estimate_and_shrinks_with_runs():
    rng = np.random.default_rng(1)
    small, large = rng.normal(size=(5, 3)), rng.normal(size=(80, 3))
    _, lo_s, hi_s = rlstats.aggregate_ci(small, "mean", n_boot=500)
    v, lo_l, hi_l = rlstats.aggregate_ci(large, "mean", n_boot=500)
    assert lo_l <= v <= hi_l and (hi_l - lo_l) < (hi_s - lo_s)
    # the mean over 3 tasks of R normal runs has s.e. 1/sqrt(3R): the 95 % CI is about ±1.96 s.e.
    assert (hi_l - lo_l) / 2 == pytest.approx(1.96 / np.sqrt(3 * 80), rel=0.25)
    p, plo, phi = rlstats.probability_of_improvement_ci(large + 1.0, large, n_boot=300)
    assert plo <= p <= phi and p > 0.7


def test_normalise_and_registry_references():
    random, solved = reference_scores("CartPole")
    assert solved == 475.0 and random == pytest.approx(22.69)
    assert reference_scores("gym:Acrobot-v1") == reference_scores("Acrobot")
    assert reference_scores("Chain") == (None, None)
    np.testing.assert_allclose(rlstats.normalise([22.69, 475.0], random, solved), [0.0, 1.0])


try:
    import rliable  # noqa: F401
    HAVE_RLIABLE = True
except ImportError:
    HAVE_RLIABLE = False


@pytest.mark.skipif(not HAVE_RLIABLE, reason="rliable not installed (scripts/check_rliable.py runs it in a venv)")
def test_against_rliable():
    from rliable import library as rly
    from rliable import metrics
    rng = np.random.default_rng(0)
    S, Y = rng.normal(size=(10, 3)), rng.normal(0.3, 1, size=(10, 3))
    assert rlstats.iqm(S) == pytest.approx(metrics.aggregate_iqm(S))
    assert rlstats.mean(S) == pytest.approx(metrics.aggregate_mean(S))
    assert rlstats.probability_of_improvement(Y, S) == pytest.approx(metrics.probability_of_improvement(Y, S))
    taus = np.linspace(-2, 2, 9)
    prof, _ = rly.create_performance_profile({"a": S}, taus, reps=50)
    np.testing.assert_allclose(rlstats.performance_profile(S, taus), prof["a"])
    est, cis = rly.get_interval_estimates({"a": S}, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=4000)
    _, lo, hi = rlstats.aggregate_ci(S, "iqm", n_boot=4000)
    np.testing.assert_allclose([lo, hi], cis["a"][:, 0], atol=0.05)


# ------------------------------------------------------------------- fake run directories


def write_run(d, env, estimator, finals, iterations=12, solved=None, env_cfg=None):
    """A run directory with one row per (iteration, seed): return_mean ramps to finals[seed];
    env_cfg: more keys of the config's env (e.g. id, params), as a real run saves them."""
    os.makedirs(d)
    with open(os.path.join(d, "metrics.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["iteration", "seed", "env_steps", "return_mean", "loss"])
        for it in range(1, iterations + 1):
            for seed, v in enumerate(finals):
                w.writerow([it, seed, 100 * it, v * min(1.0, it / 2), ""])
    summary = {"status": "completed", "env": env, "solved_threshold": solved,
               "config": {"env": {"name": env, **(env_cfg or {})}, "estimator": {"name": estimator}, "seed": 0,
                          "num_seeds": len(finals)}}
    with open(os.path.join(d, "summary.json"), "w") as f:
        json.dump(summary, f)
    os.makedirs(os.path.join(d, ".hydra"))
    with open(os.path.join(d, ".hydra", "overrides.yaml"), "w") as f:
        f.write(f"- env={env}\n- estimator={estimator}\n- num_seeds={len(finals)}\n")


@pytest.fixture
def runs(tmp_path):
    """good beats bad on every seed of both envs; 4 seeds each."""
    root = tmp_path / "multirun"
    write_run(str(root / "0"), "CartPole", "good", [400, 420, 450, 470], solved=475.0)
    write_run(str(root / "1"), "CartPole", "bad", [30, 40, 50, 60], solved=475.0)
    write_run(str(root / "2"), "Acrobot", "good", [-90, -95, -100, -110], solved=-100.0)
    write_run(str(root / "3"), "Acrobot", "bad", [-480, -470, -460, -450], solved=-100.0)
    return root


def _cli(*args, cwd):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "pgrun.report.compare", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=240)


class Parsed(HTMLParser):
    def __init__(self):
        super().__init__()
        self.figures, self.imgs, self.claims, self.commands, self.text = [], [], [], [], []
        self._in_cmd = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "figure":
            self.figures.append(a.get("id"))
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag == "tr" and "claim" in (a.get("class") or ""):
            self.claims.append(a.get("data-verdict"))
        if tag == "code" and "command" in (a.get("class") or ""):
            self._in_cmd = True
            self.commands.append("")

    def handle_endtag(self, tag):
        if tag == "code":
            self._in_cmd = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_cmd:
            self.commands[-1] += data


def parse(path) -> Parsed:
    p = Parsed()
    p.feed(open(path, encoding="utf-8").read())
    return p


def test_cli_writes_statistics_html_and_tidy_table(runs, tmp_path):
    out, html, tidy = tmp_path / "cmp", tmp_path / "r" / "report.html", tmp_path / "t" / "tidy.csv"
    r = _cli(runs, "--out", out, "--html", html, "--tidy", tidy, "--n-boot", "200", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    res = json.loads((out / "compare.json").read_text())
    assert res["envs"] == ["Acrobot", "CartPole"] and set(res["methods"]) == {"good", "bad"}
    # every good run beats every bad run on both envs: P = 1 with a degenerate interval
    assert res["improvement"]["good > bad"] == [1.0, 1.0, 1.0]
    assert res["improvement"]["bad > good"] == [0.0, 0.0, 0.0]
    # normalised finals by hand: CartPole (450 - 22.69) / (475 - 22.69); Acrobot (-100 + 497.37) / (397.37) = 1
    S = np.array(res["scores"]["good"])  # [4 runs, 2 envs (Acrobot, CartPole)]
    assert S[2, 0] == pytest.approx(1.0) and S[2, 1] == pytest.approx((450 - 22.69) / (475 - 22.69))
    assert "P(X > Y)" in r.stdout
    # HTML: four embedded figures, each with its command; provenance
    p = parse(html)
    assert p.figures == ["aggregates", "profiles", "improvement", "curves"]
    assert len(p.imgs) == 4 and all(s.startswith("data:image/png;base64,") and len(s) > 1000 for s in p.imgs)
    assert all(c.startswith("pgrun-compare ") for c in p.commands)
    text = "".join(p.text)
    assert "git commit" in text and "numpy" in text and '"estimator"' in text
    assert "pgrun env=Acrobot estimator=bad num_seeds=4" in text  # the command that trained each run
    assert "1.00 [1.00, 1.00]" in text and "0.00 [0.00, 0.00]" in text  # the P(X > Y) table
    assert "src=\"http" not in html.read_text()  # self-contained
    # tidy: the columns, and one row per (replicate, iteration, non-NaN metric): 16 × 12 × 2 (env_steps, return)
    with open(tidy, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["run", "env", "estimator", "seed", "step", "metric", "value"]
    assert len(rows) == 16 * 12 * 2 and {r["metric"] for r in rows} == {"env_steps", "return_mean"}
    last = [r for r in rows if r["run"] == "1" and r["seed"] == "3" and r["step"] == "12" and
            r["metric"] == "return_mean"]
    assert len(last) == 1 and float(last[0]["value"]) == 60.0 and last[0]["estimator"] == "bad"


def test_cli_unknown_reference_exits_2_naming_the_env(tmp_path):
    write_run(str(tmp_path / "runs" / "a"), "Chain", "x", [1, 2])
    write_run(str(tmp_path / "runs" / "b"), "Chain", "y", [3, 4])
    r = _cli(tmp_path / "runs", "--out", tmp_path / "o", "--n-boot", "50", cwd=tmp_path)
    assert r.returncode == 2 and "Chain" in r.stderr and "--ref" in r.stderr
    r = _cli(tmp_path / "runs", "--out", tmp_path / "o", "--n-boot", "50", "--ref", "Chain=0,10", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "o" / "compare.json").read_text())["improvement"]["y > x"][0] == 1.0


GYMNAX_ENV = {"id": "DeepSea-bsuite", "max_episode_steps": None, "params": {}}  # as summary.json saves it


def test_cli_normalises_gymnax_runs_without_ref(tmp_path):
    # DeepSea (size 8): the optimum 1 − 8 · 0.01/8 = 0.99 normalises to 1, the random score to 0
    random, solved = reference_scores("gymnax:DeepSea-bsuite")
    write_run(str(tmp_path / "runs" / "0"), "gymnax:DeepSea-bsuite", "x", [0.99, random], env_cfg=GYMNAX_ENV)
    write_run(str(tmp_path / "runs" / "1"), "gymnax:DeepSea-bsuite", "y", [0.99, 0.99], env_cfg=GYMNAX_ENV)
    r = _cli(tmp_path / "runs", "--out", tmp_path / "o", "--n-boot", "50", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "o" / "compare.json").read_text())
    assert res["envs"] == ["gymnax:DeepSea-bsuite"]
    np.testing.assert_allclose(np.array(res["scores"]["x"])[:, 0], [1.0, 0.0], atol=1e-12)


def test_cli_changed_env_settings_need_ref(tmp_path):
    """The registry's scores are for the default env: a run with env.params or the time limit
    changed stops (exit 2) naming the change, until --ref gives its scores."""
    changed = dict(GYMNAX_ENV, params={"unscaled_move_cost": 0.0})
    write_run(str(tmp_path / "runs" / "0"), "gymnax:DeepSea-bsuite", "x", [0.5, 1.0], env_cfg=changed)
    write_run(str(tmp_path / "runs" / "1"), "gymnax:DeepSea-bsuite", "y", [0.0, 0.0], env_cfg=changed)
    r = _cli(tmp_path / "runs", "--out", tmp_path / "o", "--n-boot", "50", cwd=tmp_path)
    assert r.returncode == 2 and "env.params.unscaled_move_cost=0.0" in r.stderr and "--ref" in r.stderr
    r = _cli(tmp_path / "runs", "--out", tmp_path / "o", "--n-boot", "50", "--ref", "gymnax:DeepSea-bsuite=0,1",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "o" / "compare.json").read_text())["scores"]["x"] == [[0.5], [1.0]]
    write_run(str(tmp_path / "cp" / "0"), "CartPole", "x", [100, 200], env_cfg={"max_episode_steps": 200})
    r = _cli(tmp_path / "cp", "--out", tmp_path / "o2", "--n-boot", "50", cwd=tmp_path)
    assert r.returncode == 2 and "env.max_episode_steps=200" in r.stderr


def test_cli_unequal_runs_exits_2(tmp_path):
    write_run(str(tmp_path / "runs" / "a"), "CartPole", "x", [1, 2, 3])
    write_run(str(tmp_path / "runs" / "b"), "CartPole", "y", [3, 4])
    write_run(str(tmp_path / "runs" / "c"), "Acrobot", "y", [3, 4])
    r = _cli(tmp_path / "runs", "--out", tmp_path / "o", "--n-boot", "50", cwd=tmp_path)
    assert r.returncode == 2 and "same number of runs" in r.stderr and '"Acrobot": 0' in r.stderr


# ------------------------------------------------------------------- the lecture report's HTML


def test_lecture_report_html_has_every_figure_and_claim(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pgrun.report.lecture_report import write_report
    os.makedirs(tmp_path / "figures")
    for name in ("a.png", "b.png"):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        fig.savefig(tmp_path / "figures" / name)
        plt.close(fig)
    secs = [Section("causality", "2. Causality", "reward-to-go", "Chain", "| x |\n|---|", [
                Claim("rtg has lower variance", True, "0.1 < 0.3", must_hold=True),
                Claim("something else", False, "2 > 1")], ["figures/a.png"]),
            Section("bc", "7. BC", "equal rewards", claims=[Claim("pg = bc", True, "max diff 1e-7")],
                    figures=["figures/b.png"])]
    summary = {"mode": "quick", "seed": 3, "sizes": {"seeds": 4}, "seconds": 1.0, "claims": 3, "holds": 2,
               "must_hold_failed": [], "sections_pending": [], "sections": []}
    write_report(str(tmp_path), secs, summary)
    p = parse(tmp_path / "report.html")
    assert p.figures == ["causality-0", "bc-0"]
    assert all(s.startswith("data:image/png;base64,") for s in p.imgs) and len(p.imgs) == 2
    assert p.claims == ["HOLDS", "DOES NOT HOLD", "HOLDS"]
    text = "".join(p.text)
    for c in ("rtg has lower variance", "something else", "pg = bc", "0.1 < 0.3"):
        assert c in text
    assert "--quick --seed 3 --sections causality" in p.commands[0]
    assert "--sections bc" in p.commands[1] and '"seeds": 4' in text and "git commit" in text


def test_cli_parquet_needs_pyarrow_or_round_trips(runs, tmp_path):
    out = tmp_path / "tidy.parquet"
    r = _cli(runs, "--out", tmp_path / "o", "--n-boot", "20", "--tidy", out, cwd=tmp_path)
    try:
        import pyarrow.parquet as pq
    except ImportError:
        assert r.returncode == 2 and "pyarrow" in r.stderr and not out.exists()
        return
    assert r.returncode == 0, r.stderr
    table = pq.read_table(out)
    assert table.column_names == ["run", "env", "estimator", "seed", "step", "metric", "value"]
    assert table.num_rows == 16 * 12 * 2


def test_curves_against_env_steps_are_interpolated(runs, tmp_path):
    from pgrun.report.compare import compare
    by_it = compare([str(runs)], str(tmp_path / "a"), n_boot=50)
    by_steps = compare([str(runs)], str(tmp_path / "b"), n_boot=50, x="env_steps")
    assert by_it["steps"] == list(range(1, 13))
    # env_steps = 100 · iteration in every fake run: a grid of 100 points from 100 to 1200
    assert len(by_steps["steps"]) == 100 and by_steps["steps"][0] == 100 and by_steps["steps"][-1] == 1200
    for m in ("good", "bad"):
        a, b = by_it["curves"][m]["iqm"], by_steps["curves"][m]["iqm"]
        assert b[0] == pytest.approx(a[0]) and b[-1] == pytest.approx(a[-1])
        # halfway between iterations 1 and 2 (150 steps) the ramp is halfway: linear interpolation
        assert np.interp(150, by_steps["steps"], b) == pytest.approx((a[0] + a[1]) / 2)
