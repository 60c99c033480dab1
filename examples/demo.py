"""`make demo`: the main job on the bundled trained models.

Runs the two commands a user runs first, on the trained digits checkpoints:
`snncc check-spike-only` (is it spike-driven, and where not?) and
`snncc compile --target ir` (the canonical, checked graph), and prints them.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CKPT = HERE / "checkpoints"
OUT = Path("out")


def sh(*args: str) -> int:
    cmd = ["snncc", *args]
    print(f"\n$ {shlex.join(cmd)}", flush=True)
    return subprocess.call([sys.executable, "-m", "snncc.cli", *args])


def main() -> None:
    OUT.mkdir(exist_ok=True)
    shape = ["--input-shape", "4,1,1,8,8"]
    spikingformer = str(CKPT / "spikingformer_digits.pt")
    spikformer = str(CKPT / "spikformer_digits.pt")
    rc = [
        sh("inspect", spikingformer, *shape),
        sh("check-spike-only", spikingformer, *shape),
        sh("check-spike-only", spikformer, *shape),
        sh("compile", spikingformer, *shape, "--target", "ir", "-o", str(OUT / "spikingformer_digits.snnir")),
    ]
    print("\nSummary: Spikingformer (spike-driven residuals) "
          f"{'passes' if rc[1] == 0 else 'FAILS'} the spike-only check; Spikformer "
          f"{'has violations (its residual stream carries integers), as expected' if rc[2] == 1 else 'unexpectedly passes'}; "
          f"compiled IR in {OUT}/.")
    if rc[0] != 0 or rc[1] != 0 or rc[2] != 1 or rc[3] != 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
