"""runner.loop's start-up overlap: the chunk compiled ahead from shapes is the program a direct
compile gives, and end-of-run modules are imported in the background."""

from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

from pgrun.runner.loop import compile_ahead


def test_compile_ahead_from_shapes_runs_like_the_direct_compile():
    def f(x):
        return jnp.cumsum(jnp.sin(x) * 3.0), x.sum()

    x = jnp.arange(12, dtype=jnp.float32).reshape(3, 4)
    program = jax.jit(f)
    ahead = compile_ahead(program, lambda: jax.eval_shape(lambda: x))
    got, want = ahead.result()(x), program.lower(x).compile()(x)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
    np.testing.assert_allclose(np.asarray(got[1]), 66.0)  # 0 + 1 + ... + 11


def test_compile_ahead_reraises_the_compilation_error():
    program = jax.jit(lambda x: x @ x)  # (2, 3) @ (2, 3): a shape error at lowering
    ahead = compile_ahead(program, lambda: jax.ShapeDtypeStruct((2, 3), jnp.float32))
    try:
        ahead.result()
    except TypeError as e:
        assert "dot_general" in str(e) or "shape" in str(e)
    else:
        raise AssertionError("a bad program compiled")


def test_prewarm_imports_end_of_run_modules_in_a_fresh_process():
    code = ("import sys; from pgrun.runner.loop import END_OF_RUN_MODULES, prewarm_imports; "
            "assert not any(m in sys.modules for m in END_OF_RUN_MODULES), 'imported at import time'; "
            "prewarm_imports().join(); print(all(m in sys.modules for m in END_OF_RUN_MODULES))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "True"
