"""Where the vendor specs of `../shared/` are: beside the checkout, or named by CLERK_SHARED_DIR.

A clean clone elsewhere (CI) still finds the machine's copy at /work/shared.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def shared_file(*parts: str) -> Path:
    """The first existing candidate, or the conventional path (so a skip message names it)."""
    candidates = [Path(p) for p in (os.environ.get("CLERK_SHARED_DIR"),) if p]
    candidates += [ROOT.parent / "shared", Path("/work/shared")]
    for base in candidates:
        if (base.joinpath(*parts)).exists():
            return base.joinpath(*parts)
    return candidates[0].joinpath(*parts)
