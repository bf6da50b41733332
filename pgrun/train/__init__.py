"""The training program: `build(config)` makes the env, policy and critic once; `make_train`
returns pure per-seed `init` and `chunk`; batch reuse (`offpolicy`), vmapped sweeps and the
run axis sharded over devices."""
