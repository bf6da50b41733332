"""One self-contained HTML file: figures embedded as base64 PNG, tables, configs, the commands
that regenerate each figure, package versions and the git commit. No external resource is
referenced, so the file opens anywhere (mail it, attach it to a review).

Markup the tests (and any reader) can rely on: each figure is `<figure class="figure" id=...>`
holding an `<img src="data:image/png;base64,...">` and a `<code class="command">`; each claim
is `<tr class="claim" data-verdict="HOLDS|DOES NOT HOLD">`.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata

PACKAGES = ("pgrun", "jax", "jaxlib", "flax", "optax", "gymnasium", "numpy", "scipy", "matplotlib", "hydra-core")

CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3}figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.9em;color:#444}code.command{display:block;background:#f6f6f6;padding:.4em;
white-space:pre-wrap;font-size:.85em}pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.8em}
tr.claim[data-verdict="HOLDS"] td.verdict{color:#0a6b0a;font-weight:bold}
tr.claim[data-verdict="DOES NOT HOLD"] td.verdict{color:#b00;font-weight:bold}"""


@dataclass
class Figure:
    id: str
    caption: str
    png: bytes                # the PNG file's bytes
    command: str              # the exact command that regenerates it


@dataclass
class Page:
    title: str
    parts: list[str] = field(default_factory=list)  # HTML fragments, in order
    figures: list[Figure] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.parts.append(f"<h{level}>{esc(text)}</h{level}>")

    def paragraph(self, text: str) -> None:
        self.parts.append(f"<p>{esc(text)}</p>")

    def add_figure(self, fig: Figure) -> None:
        self.figures.append(fig)
        uri = "data:image/png;base64," + base64.b64encode(fig.png).decode("ascii")
        self.parts.append(f'<figure class="figure" id="{esc(fig.id)}"><img alt="{esc(fig.caption)}" src="{uri}">'
                          f"<figcaption>{esc(fig.caption)}</figcaption>"
                          f'<code class="command">{esc(fig.command)}</code></figure>')

    def table(self, header: list[str], rows: list[list], cls: str = "") -> None:
        self.parts.append(table_html(header, rows, cls))

    def pre(self, text: str, summary: str | None = None) -> None:
        block = f"<pre>{esc(text)}</pre>"
        self.parts.append(f"<details><summary>{esc(summary)}</summary>{block}</details>" if summary else block)

    def provenance(self, command: str) -> None:
        """The command line, the git commit and the package versions."""
        self.heading("Provenance")
        self.parts.append(f'<p>Command:</p><code class="command" id="main-command">{esc(command)}</code>')
        self.table(["", ""], [["git commit", git_commit()], ["python", sys.version.split()[0]]]
                   + [[k, v] for k, v in package_versions().items()], cls="versions")

    def render(self) -> str:
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{esc(self.title)}</title><style>{CSS}</style></head><body>"
                f"<h1>{esc(self.title)}</h1>\n" + "\n".join(self.parts) + "\n</body></html>\n")

    def write(self, path: str) -> str:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.render())
        return path


def esc(x) -> str:
    return html.escape(str(x), quote=True)


def table_html(header: list[str], rows: list[list], cls: str = "") -> str:
    c = f' class="{esc(cls)}"' if cls else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table{c}><tr>{head}</tr>{body}</table>"


def claim_rows(claims: list[tuple[str, str, str, bool]]) -> str:
    """(text, verdict, evidence, must_hold) -> the claim table, one `tr.claim` per claim."""
    out = ["<table class=\"claims\"><tr><th>claim</th><th>verdict</th><th>evidence</th></tr>"]
    for text, verdict, evidence, must in claims:
        tag = " (must hold)" if must else ""
        out.append(f'<tr class="claim" data-verdict="{esc(verdict)}"><td>{esc(text)}{esc(tag)}</td>'
                   f'<td class="verdict">{esc(verdict)}</td><td>{esc(evidence)}</td></tr>')
    return "".join(out) + "</table>"


def fig_png(fig, dpi: int = 110) -> bytes:
    """A matplotlib figure's PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def package_versions(names=PACKAGES) -> dict[str, str]:
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


def git_commit() -> str:
    """HEAD of the repository holding this pgrun (with '+dirty' for uncommitted changes), or 'unknown'."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def config_block(config: dict) -> str:
    return json.dumps(config, indent=1, sort_keys=True, default=str)
