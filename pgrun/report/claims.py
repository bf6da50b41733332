"""Claims and sections of the lecture report: what was claimed, what was measured, verdict."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

HOLDS, FAILS = "HOLDS", "DOES NOT HOLD"


@dataclass
class Claim:
    text: str               # the claim, in the lecture's terms
    holds: bool
    evidence: str           # the measured numbers behind the verdict
    must_hold: bool = False  # a must-hold claim that fails makes the report fail

    @property
    def verdict(self) -> str:
        return HOLDS if self.holds else FAILS


@dataclass
class Section:
    key: str
    title: str
    lecture: str                          # the lecture passage tested (source and gist)
    setup: str = ""                       # what was run
    body: str = ""                        # markdown tables of the measured numbers
    claims: list[Claim] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)  # paths relative to the report dir
    data: dict = field(default_factory=dict)          # numbers for report.json
    seconds: float = 0.0

    def markdown(self) -> str:
        out = [f"## {self.title}", "", f"**Lecture.** {self.lecture}", ""]
        if self.setup:
            out += [f"**Setup.** {self.setup}", ""]
        if self.body:
            out += [self.body, ""]
        for f in self.figures:
            out += [f"![{f}]({f})", ""]
        out += ["**Claims.**", ""]
        for c in self.claims:
            tag = " (must hold)" if c.must_hold else ""
            out.append(f"- **{c.verdict}**{tag}: {c.text} — {c.evidence}")
        out += ["", f"_Section time: {self.seconds:.1f} s._", ""]
        return "\n".join(out)

    def to_json(self) -> dict:
        return {"key": self.key, "title": self.title, "seconds": round(self.seconds, 2),
                "claims": [dict(asdict(c), verdict=c.verdict) for c in self.claims],
                "figures": self.figures, "data": self.data}


def fmt_ci(ci) -> str:
    return f"[{ci[0]:.3g}, {ci[1]:.3g}]" if ci else "n/a"
