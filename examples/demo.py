"""`make demo`: the main job on the bundled trained models.

Runs the commands a user runs, on the trained digits checkpoints:
`snncc check-spike-only` (is it spike-driven, and where not?),
`snncc compile --target ir` (the canonical, checked graph), then
`snncc compile --target acsim` (quantized for Loihi 2 and mapped to cores),
`snncc run` on the digits test set (accuracy, latency, energy) and
`snncc report --html` (the per-layer and per-core breakdown).
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


def write_digits_inputs() -> tuple[Path, Path]:
    """Calibration images (training set) and the labelled test set, as [T, B, 1, 8, 8]."""
    import torch

    from snncc.examples.digits import encode, load_digits_split

    xtr, _, xte, yte = load_digits_split()
    cal, test = OUT / "digits_calibration.pt", OUT / "digits_test.pt"
    torch.save(encode(xtr[:64]), cal)
    torch.save({"inputs": encode(xte), "labels": yte}, test)
    return cal, test


def main() -> None:
    OUT.mkdir(exist_ok=True)
    shape = ["--input-shape", "4,1,1,8,8"]
    spikingformer = str(CKPT / "spikingformer_digits.pt")
    spikformer = str(CKPT / "spikformer_digits.pt")
    cal, test = write_digits_inputs()
    artifact = str(OUT / "spikingformer_digits.acsim")
    rc = [
        sh("inspect", spikingformer, *shape),
        sh("check-spike-only", spikingformer, *shape),
        sh("check-spike-only", spikformer, *shape),
        sh("compile", spikingformer, *shape, "--target", "ir", "-o", str(OUT / "spikingformer_digits.snnir")),
        sh("compile", spikingformer, *shape, "--target", "acsim", "--calibration", str(cal),
           "-o", artifact),
        sh("run", artifact, "--inputs", str(test)),
        sh("report", artifact, "--inputs", str(test), "--html", str(OUT / "report.html")),
    ]
    print("\nSummary: Spikingformer (spike-driven residuals) "
          f"{'passes' if rc[1] == 0 else 'FAILS'} the spike-only check; Spikformer "
          f"{'has violations (its residual stream carries integers), as expected' if rc[2] == 1 else 'unexpectedly passes'}; "
          f"compiled IR, the acsim artifact and {OUT}/report.html are in {OUT}/.")
    if rc[1] != 0 or rc[2] != 1 or any(rc[i] != 0 for i in (0, 3, 4, 5, 6)):
        sys.exit(1)


if __name__ == "__main__":
    main()
