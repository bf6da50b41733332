"""pgrun/__init__.py's XLA options: LLVM's loop unswitching off for XLA:CPU's kernels.

The kernel that jax's rolled threefry loop compiles to (every key split, rbg keys included)
has 8 loop-invariant shift conditions; LLVM -O3 unswitches its loop into up to 2^8 copies
(≈ 190 kB of optimized LLVM IR for the program below, ≈ 35 kB without unswitching).
Checked on the IR that XLA dumps, in a fresh process: XLA reads XLA_FLAGS once, when its
CPU backend starts. What it changes in the metrics (nothing for the default command) is
checked by scripts/behaviour_snapshot.py (docs/benchmarks.md)."""

from __future__ import annotations

import os
import subprocess
import sys

from pgrun import UNSWITCH_FLAG, with_compile_flags

SPLIT_PROGRAM = """
import glob, os, sys
import pgrun  # noqa: F401  (sets the options)
import jax
keys = jax.random.split(jax.random.PRNGKey(0), 8)
jax.block_until_ready(jax.jit(jax.vmap(lambda k: jax.random.split(k, 16)))(keys))
print(max(os.path.getsize(p) for p in glob.glob(os.path.join(sys.argv[1], "*ir-with-opt.ll"))), flush=True)
os._exit(0)  # skip exit handlers: with --xla_dump_to, jaxlib 0.10.2 sometimes crashes in them
"""


def test_key_split_kernels_are_not_unswitched(tmp_path):
    env = {**os.environ, "XLA_FLAGS": f"--xla_dump_to={tmp_path} --xla_dump_emitter_re=.*"}
    for _ in range(4):  # jaxlib 0.10.2 sometimes segfaults while dumping (about 1 run in 4, pgrun or not)
        out = subprocess.run([sys.executable, "-c", SPLIT_PROGRAM, str(tmp_path)], capture_output=True, text=True,
                             timeout=120, env=env)
        if out.returncode >= 0:
            break
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout) < 80_000  # the largest kernel's optimized IR; ≈ 190 kB when unswitched


def test_user_backend_options_are_kept():
    assert with_compile_flags("") == UNSWITCH_FLAG
    assert with_compile_flags("--xla_force_host_platform_device_count=4") == \
        f"--xla_force_host_platform_device_count=4 {UNSWITCH_FLAG}"
    own = "--xla_backend_extra_options=-unswitch-threshold=50"
    assert with_compile_flags(own) == own
