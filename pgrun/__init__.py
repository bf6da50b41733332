"""pgrun: policy-gradient experiment runner on JAX."""

from __future__ import annotations

import importlib.abc
import os
import sys
from types import ModuleType

# XLA's RngBitGenerator keys ("rbg") compile about twice as fast and sample faster on CPU than
# threefry; a given config and seed stay bit-for-bit reproducible. Under vmap, though, rbg draws
# the bits of every run from the batch's first key, so a seed's stream depends on its position
# in the run (seed 3 of `seed=0 num_seeds=8` is not `seed=3 num_seeds=1`). Set
# JAX_DEFAULT_PRNG_IMPL=threefry2x32 for position-independent seeds at the cost of compile time.
PRNG_IMPL = "rbg"


class _PrngOnJaxImport(importlib.abc.MetaPathFinder):
    """Sets JAX's default PRNG right after `jax` is first imported, so that importing pgrun does
    not import JAX (`pgrun --help` and config errors never load it). The setting is the one
    `jax.config.update` makes, at the moment an `import jax` made at the top of this file made
    it; no environment variable is set, so subprocesses (a peer's benchmark) see JAX's default."""

    def find_spec(self, name: str, path: object = None, target: ModuleType | None = None):
        if name != "jax":
            return None
        spec = None
        for finder in sys.meta_path:  # the finders after this one find jax as they would without it
            find = getattr(finder, "find_spec", None)
            if finder is not self and find is not None:
                spec = find(name, path, target)
                if spec is not None:
                    break
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            _forget_finder()
            if "JAX_DEFAULT_PRNG_IMPL" not in os.environ:
                module.config.update("jax_default_prng_impl", PRNG_IMPL)

        setattr(loader, "exec_module", exec_module)  # noqa: B010 (this spec's own loader; jax's __loader__ stays it)
        return spec


_FINDER = _PrngOnJaxImport()


def _forget_finder() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


if "JAX_DEFAULT_PRNG_IMPL" not in os.environ:
    if "jax" in sys.modules:  # imported before pgrun
        sys.modules["jax"].config.update("jax_default_prng_impl", PRNG_IMPL)
    elif _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)

# XLA:CPU compiles every fused kernel with LLVM at -O3, whose non-trivial loop unswitching makes
# a copy of a kernel's loop for each combination of its loop-invariant conditions: 2^8 copies for
# the 8 variable shift amounts of jax's rolled threefry loop, which every key split compiles (rbg
# splits with threefry too). Threshold 0 keeps loops whole: a training chunk compiles in 0.65-0.85x
# the CPU time (PPO, TRPO, baseline) and runs as fast; the default command's metrics are the same
# bit for bit (a few logged reductions of other runs can differ in the last bit:
# docs/benchmarks.md). XLA reads XLA_FLAGS when its CPU backend starts, so this must run before
# the first computation; a user's own xla_backend_extra_options are left alone.
UNSWITCH_FLAG = "--xla_backend_extra_options=-unswitch-threshold=0"


def with_compile_flags(xla_flags: str) -> str:
    """XLA_FLAGS plus UNSWITCH_FLAG, unless they set xla_backend_extra_options themselves."""
    return xla_flags if "xla_backend_extra_options" in xla_flags else f"{xla_flags} {UNSWITCH_FLAG}".strip()


os.environ["XLA_FLAGS"] = with_compile_flags(os.environ.get("XLA_FLAGS", ""))
