"""The lecture report as one self-contained HTML file (report.html next to report.md): per
section the lecture's claim, setup, measured tables, figures embedded as PNG data with the
command that regenerates them, and the claim table with verdicts; then the sizes (the
report's config), package versions and the git commit."""

from __future__ import annotations

import json
import os

from pgrun.report.claims import Section
from pgrun.report.html import Figure, Page, claim_rows


def section_command(out_dir: str, summary: dict, key: str) -> str:
    quick = " --quick" if summary["mode"] == "quick" else ""
    return f"python scripts/lecture_report.py --out {out_dir}{quick} --seed {summary['seed']} --sections {key}"


def write_lecture_html(out_dir: str, sections: list[Section], summary: dict, name: str = "report.html") -> str:
    page = Page("Lecture report: policy-gradient claims, measured")
    page.paragraph(f"Mode {summary['mode']} (seed {summary['seed']}): {summary['holds']} of {summary['claims']} "
                   f"claims hold; must-hold claims failed: {len(summary['must_hold_failed'])}; "
                   f"total time {summary['seconds']:.0f} s.")
    for m in summary["must_hold_failed"]:
        page.paragraph(f"MUST-HOLD CLAIM DOES NOT HOLD: {m}")
    if summary.get("sections_pending"):
        page.paragraph(f"Sections still running or not run: {', '.join(summary['sections_pending'])}.")
    for s in sections:
        page.heading(s.title)
        page.paragraph(f"Lecture. {s.lecture}")
        if s.setup:
            page.paragraph(f"Setup. {s.setup}")
        if s.body:
            page.pre(s.body)
        for i, f in enumerate(s.figures):
            path = os.path.join(out_dir, f)
            if not os.path.isfile(path):
                page.paragraph(f"Figure {f} is missing from {out_dir}.")
                continue
            with open(path, "rb") as fh:
                png = fh.read()
            page.add_figure(Figure(f"{s.key}-{i}", f, png, section_command(out_dir, summary, s.key) + f"  # -> {f}"))
        page.parts.append(claim_rows([(c.text, c.verdict, c.evidence, c.must_hold) for c in s.claims]))
        page.paragraph(f"Section time: {s.seconds:.1f} s.")
    page.heading("Config")
    page.pre(json.dumps({"mode": summary["mode"], "seed": summary["seed"], "sizes": summary["sizes"]}, indent=1,
                        default=str))
    quick = " --quick" if summary["mode"] == "quick" else ""
    page.provenance(f"python scripts/lecture_report.py --out {out_dir}{quick} --seed {summary['seed']}")
    return page.write(os.path.join(out_dir, name))
