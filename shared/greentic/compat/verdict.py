"""One file's verdict and the per-kind tally of a walk."""

from collections import Counter

import msgspec

KINDS = ("flows", "packs", "components")


class Verdict(msgspec.Struct, frozen=True):
    path: str
    kind: str  # one of KINDS
    accepted: bool
    reason: str = ""  # why refused; for an accepted file, what it is (world, layout, nodes)


def summary_line(verdicts: list[Verdict]) -> str:
    """`flows N/M, packs N/M, components N/M`."""
    total = Counter(v.kind for v in verdicts)
    accepted = Counter(v.kind for v in verdicts if v.accepted)
    return ", ".join(f"{kind} {accepted[kind]}/{total[kind]}" for kind in KINDS)
