"""The hard KL constraint of notes 04 (TRPO, Schulman et al. 2015), all inside jit.

    maximise_θ'  L(θ') = mean_t ρ_t(θ') A_t      subject to  KL̄(θ') = mean_s KL(π_θ(·|s) ‖ π_θ'(·|s)) ≤ δ

(notes 04 writes KL(π_θ' ‖ π_θ); both directions have the same Hessian F at θ' = θ, the
Fisher information, and TRPO bounds KL(old ‖ new), which the line search below checks).
A second-order model around θ gives the natural-gradient step:

  g = ∇L(θ);  x = (F + λI)⁻¹ g by conjugate gradient on Fisher-vector products
  Fv = ∇(∇KL̄ · v) (forward-over-reverse autodiff of the mean KL at θ; λ = damping);
  full step s = √(2δ / xᵀ(F + λI)x) · x, the step to the edge of the quadratic trust region.

The quadratic model is only a model, so a backtracking line search tries θ + c^j s for
j = 0 .. J-1 (c = backtrack_coef) and accepts the first candidate whose *measured* mean KL
is ≤ δ and whose surrogate improves, L(θ + c^j s) > L(θ); if none does, θ stays. Loops are
`lax.fori_loop` / `lax.while_loop`: no Python branching on traced values. Parameters are
flattened with `ravel_pytree`.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree


class LineSearch(NamedTuple):
    steps: jax.Array        # int32: candidates evaluated (J when none was accepted)
    accepted: jax.Array     # bool
    kl: jax.Array           # mean KL(old ‖ new) of the accepted step (0 when none)
    improvement: jax.Array  # L(θ_new) - L(θ) (0 when none)


def conjugate_gradient(matvec: Callable, b: jax.Array, iters: int, residual_tol: float = 1e-10) -> jax.Array:
    """x ≈ A⁻¹ b for symmetric positive-definite A, given v ↦ Av, after `iters` CG iterations.

    x_0 = 0, r_0 = p_0 = b;  α = rᵀr / pᵀAp;  x += αp;  r -= αAp;  p = r + (r'ᵀr' / rᵀr) p.
    Once rᵀr ≤ residual_tol the iterate stops moving (fixed iteration count under jit).
    b [n] -> x [n].
    """
    def body(_, carry):
        x, r, p, rr = carry
        ap = matvec(p)
        pap = jnp.vdot(p, ap)
        go = (rr > residual_tol) & (pap > 0)
        alpha = jnp.where(go, rr / jnp.where(go, pap, 1.0), 0.0)
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = jnp.vdot(r, r)
        beta = jnp.where(go, rr_new / jnp.where(go, rr, 1.0), 0.0)
        return x, r, r + beta * p, jnp.where(go, rr_new, rr)

    init = (jnp.zeros_like(b), b, b, jnp.vdot(b, b))
    x, _, _, _ = jax.lax.fori_loop(0, iters, body, init)
    return x


def fisher_vector_product(kl_fn: Callable, theta0: jax.Array, damping: float | jax.Array) -> Callable:
    """v ↦ (F + λI) v with F = ∇²KL̄(θ0): a jvp of the gradient of the mean KL.  θ0, v [n]."""
    grad_kl = jax.grad(kl_fn)

    def fvp(v):
        return jax.jvp(grad_kl, (theta0,), (v,))[1] + damping * v

    return fvp


def natural_step(g: jax.Array, fvp: Callable, max_kl: float | jax.Array, cg_iters: int) -> jax.Array:
    """s = √(2δ / xᵀ(F + λI)x) · x with x = CG((F + λI), g): the step whose quadratic KL
    model ½ sᵀ(F + λI)s equals δ.  0 when g = 0.  g [n] -> s [n]."""
    x = conjugate_gradient(fvp, g, cg_iters)
    xfx = jnp.vdot(x, fvp(x))
    scale = jnp.where(xfx > 0, jnp.sqrt(2.0 * max_kl / jnp.where(xfx > 0, xfx, 1.0)), 0.0)
    return scale * x


def backtracking_line_search(surrogate_fn: Callable, kl_fn: Callable, theta0: jax.Array,
                             full_step: jax.Array, max_kl: float | jax.Array, iters: int,
                             coef: float | jax.Array) -> tuple[jax.Array, LineSearch]:
    """First θ0 + coef^j·full_step (j = 0 .. iters-1) with KL̄ ≤ max_kl and L above L(θ0).

    surrogate_fn, kl_fn: [n] -> scalar. Returns (θ_new [n], LineSearch); θ_new = θ0 if no
    candidate qualifies. A candidate with a non-finite L or KL is never accepted.
    """
    l0 = surrogate_fn(theta0)

    def cond(c):
        j, accepted, _, _ = c
        return (j < iters) & jnp.logical_not(accepted)

    def body(c):
        j, _, _, _ = c
        theta = theta0 + jnp.power(coef, j.astype(full_step.dtype)) * full_step
        gain = surrogate_fn(theta) - l0
        kl = kl_fn(theta)
        ok = (kl <= max_kl) & (gain > 0) & jnp.isfinite(kl) & jnp.isfinite(gain)
        return j + 1, ok, kl, gain

    init = (jnp.int32(0), jnp.bool_(False), jnp.float32(0.0), jnp.float32(0.0))
    j, accepted, kl, gain = jax.lax.while_loop(cond, body, init)
    theta = jnp.where(accepted, theta0 + jnp.power(coef, (j - 1).astype(full_step.dtype)) * full_step, theta0)
    zero = jnp.zeros_like(kl)
    return theta, LineSearch(j, accepted, jnp.where(accepted, kl, zero), jnp.where(accepted, gain, zero))


def trpo_step(surrogate_fn: Callable, kl_fn: Callable, params: Any, max_kl: float | jax.Array, cg_iters: int,
              damping: float | jax.Array, backtrack_iters: int,
              backtrack_coef: float | jax.Array) -> tuple[Any, LineSearch, dict[str, jax.Array]]:
    """One TRPO update of a parameter pytree.

    surrogate_fn(params) -> L (to maximise), kl_fn(params) -> mean KL(π_old ‖ π_params), with
    π_old = π at `params`. Returns (new params, LineSearch, {"surrogate": L(θ), "grad_norm": |∇L(θ)|}).
    """
    theta0, unravel = ravel_pytree(params)
    flat_l = lambda th: surrogate_fn(unravel(th))  # noqa: E731
    flat_kl = lambda th: kl_fn(unravel(th))  # noqa: E731
    l0, g = jax.value_and_grad(flat_l)(theta0)
    step = natural_step(g, fisher_vector_product(flat_kl, theta0, damping), max_kl, cg_iters)
    theta, info = backtracking_line_search(flat_l, flat_kl, theta0, step, max_kl, backtrack_iters, backtrack_coef)
    return unravel(theta), info, {"surrogate": l0, "grad_norm": jnp.linalg.norm(g)}
