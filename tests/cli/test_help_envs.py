"""`pgrun --help`'s env entries say what each path does: gym:<id> is stepped on the host and
rewritten to env=gym env.id=<id>; func:<module>:<Class> has a 1000-step default time limit
(the note about gym: once sat under func:, and the time limit was nowhere)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from helpers import ROOT


def env_entries(text: str) -> dict[str, str]:
    """{option: its description, continuation lines included} of the env= group in --help."""
    section = text[text.index("env="): text.index("policy=")]
    entries: dict[str, str] = {}
    current = None
    for line in section.splitlines():
        m = re.match(r"\s*(?:env=)?\s+(\S+)\s{2,}(.*)", line)
        if m and len(line) - len(line.lstrip()) < 20:  # an option line (continuations are indented further)
            current = m.group(1)
            entries[current] = m.group(2)
        elif current:
            entries[current] += " " + line.strip()
    return entries


def test_gym_and_func_help_lines():
    p = subprocess.run([sys.executable, "-m", "pgrun.cli", "--help"], cwd=str(ROOT), capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    entries = env_entries(p.stdout)
    gym, func = entries["gym:<id>"], entries["func:<module>:<Class>"]
    assert "rewritten to env=gym env.id=<id>" in gym and "slower" in gym
    assert "env=gym" not in func and "slower" not in func
    assert "1000 steps" in func and "env.max_episode_steps" in func
