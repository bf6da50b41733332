"""Aggregate statistics over runs and tasks (Agarwal et al. 2021, "Deep RL at the edge of the
statistical precipice"), in NumPy/SciPy: rliable is archived, these follow its definitions.

Scores are a matrix S [R, T]: R runs (seeds) of one estimator on each of T tasks (envs), in
normalised units (`normalise`). Every estimate comes with a 95 % *stratified* percentile
bootstrap interval: a resample draws, independently for each task t, R runs of column t with
replacement (the tasks are kept, the runs are resampled within each task), and the interval is
the 2.5 / 97.5 % percentiles of the statistic over `n_boot` resamples
(`np.random.default_rng(seed)`, so it is deterministic).

  IQM(S)   = mean of the middle 50 % of all R·T scores (trim_mean, 25 % cut each side: runner.stats, scipy's bits)
  mean(S)  = (1/T) Σ_t (1/R) Σ_r S[r, t]
  profile  = P̂(score > τ) = (1/T) Σ_t (1/R) Σ_r 1[S[r, t] > τ], for each τ
  P(X > Y) = (1/T) Σ_t (1/(R_x R_y)) Σ_i Σ_j [1[X_it > Y_jt] + ½·1[X_it = Y_jt]]
             (the Mann-Whitney U of task t over R_x R_y), X and Y resampled independently
  curves   = IQM over the R·T scores at each step of S [R, T, K]
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from pgrun.runner.stats import trim_mean

N_BOOT = 2000
SEED = 0
LEVEL = 0.95


def normalise(score, random: float, solved: float):
    """(score − random) / (solved − random): 0 is the random policy, 1 the solved threshold."""
    if solved == random:
        raise ValueError(f"solved threshold {solved} equals the random score: cannot normalise")
    return (np.asarray(score, np.float64) - random) / (solved - random)


def iqm(S) -> float:
    """Interquartile mean of all entries of S [R, T] (or [R])."""
    return float(trim_mean(np.ravel(np.asarray(S, np.float64)), 0.25))  # scipy's axis=None: ravelled


def mean(S) -> float:
    """Mean over runs per task, then over tasks: (1/T) Σ_t mean_r S[r, t]."""
    S = np.asarray(S, np.float64)
    return float(S.reshape(S.shape[0], -1).mean(axis=0).mean())


AGGREGATES: dict[str, Callable[[np.ndarray], float]] = {"iqm": iqm, "mean": mean}


def stratified_indices(rng: np.random.Generator, R: int, T: int, n_boot: int) -> np.ndarray:
    """[n_boot, R, T] run indices: each task's column resampled with replacement on its own."""
    return rng.integers(0, R, size=(n_boot, R, T))


def _resample(S: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """S [R, T, ...] and idx [B, R, T] -> [B, R, T, ...], column t taken at rows idx[:, :, t]."""
    T = S.shape[1]
    return S[idx, np.arange(T)[None, None, :]]


def _percentiles(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = (1 - LEVEL) / 2 * 100
    return np.percentile(values, a, axis=0), np.percentile(values, 100 - a, axis=0)


def aggregate_ci(S, stat: str = "iqm", n_boot: int = N_BOOT, seed: int = SEED) -> tuple[float, float, float]:
    """(point, lo, hi) of AGGREGATES[stat] of S [R, T] with its stratified bootstrap 95 % CI."""
    S = np.asarray(S, np.float64)
    S = S.reshape(S.shape[0], -1)
    f = AGGREGATES[stat]
    idx = stratified_indices(np.random.default_rng(seed), S.shape[0], S.shape[1], n_boot)
    boot = np.array([f(S[i, np.arange(S.shape[1])]) for i in idx])
    lo, hi = _percentiles(boot)
    return f(S), float(lo), float(hi)


def performance_profile(S, taus) -> np.ndarray:
    """Fraction of runs with score > τ, averaged over tasks, for each τ: [len(taus)]."""
    S = np.asarray(S, np.float64)
    S = S.reshape(S.shape[0], -1)
    taus = np.asarray(taus, np.float64)
    return (S[None, :, :] > taus[:, None, None]).mean(axis=1).mean(axis=1)


def performance_profile_ci(S, taus, n_boot: int = N_BOOT, seed: int = SEED):
    """(profile [K], lo [K], hi [K]) with stratified bootstrap 95 % bands."""
    S = np.asarray(S, np.float64)
    S = S.reshape(S.shape[0], -1)
    idx = stratified_indices(np.random.default_rng(seed), S.shape[0], S.shape[1], n_boot)
    boot = np.stack([performance_profile(S[i, np.arange(S.shape[1])], taus) for i in idx])
    lo, hi = _percentiles(boot)
    return performance_profile(S, taus), lo, hi


def probability_of_improvement(X, Y) -> float:
    """P(X > Y): per task the Mann-Whitney U of X's runs over Y's, / (R_x R_y), ties ½; mean over tasks.
    X [R_x, T], Y [R_y, T]."""
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    X, Y = X.reshape(X.shape[0], -1), Y.reshape(Y.shape[0], -1)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X has {X.shape[1]} tasks, Y has {Y.shape[1]}: the same tasks are needed")
    gt = (X[:, None, :] > Y[None, :, :]).mean(axis=(0, 1))
    eq = (X[:, None, :] == Y[None, :, :]).mean(axis=(0, 1))
    return float((gt + 0.5 * eq).mean())


def probability_of_improvement_ci(X, Y, n_boot: int = N_BOOT, seed: int = SEED) -> tuple[float, float, float]:
    """(P(X > Y), lo, hi): X and Y each resampled stratified (within tasks), independently."""
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    X, Y = X.reshape(X.shape[0], -1), Y.reshape(Y.shape[0], -1)
    rng = np.random.default_rng(seed)
    ix = stratified_indices(rng, X.shape[0], X.shape[1], n_boot)
    iy = stratified_indices(rng, Y.shape[0], Y.shape[1], n_boot)
    T = np.arange(X.shape[1])
    boot = np.array([probability_of_improvement(X[a, T], Y[b, T]) for a, b in zip(ix, iy)])
    lo, hi = _percentiles(boot)
    return probability_of_improvement(X, Y), float(lo), float(hi)


def curve_iqm_ci(S, n_boot: int = N_BOOT, seed: int = SEED):
    """Sample-efficiency curve of S [R, T, K]: (IQM [K], lo [K], hi [K]) over the R·T scores at each
    step, stratified bootstrap over runs within tasks (one resample of runs for all steps)."""
    S = np.asarray(S, np.float64)
    R, T, K = S.shape
    point = trim_mean(S.reshape(R * T, K), 0.25, axis=0)
    idx = stratified_indices(np.random.default_rng(seed), R, T, n_boot)
    boot = np.stack([trim_mean(_resample(S, i[None])[0].reshape(R * T, K), 0.25, axis=0) for i in idx])
    lo, hi = _percentiles(boot)
    return point, lo, hi
