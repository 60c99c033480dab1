"""Whether Lava can run here, said once and clearly.

Why its own module: lava-nc 0.10.0 installs and imports on Python 3.10 only; on
a newer Python every Lava command must fail with one line saying why and what
to do, while every other command keeps working (nothing else imports Lava).
"""

from __future__ import annotations

import sys

from snncc.diagnostics import SnnccError


def require_lava() -> None:
    """Raise SNN-LAVA001 if lava-nc cannot be imported on this Python."""
    if sys.version_info[:2] != (3, 10):
        raise SnnccError(
            "SNN-LAVA001",
            f"the Lava backend needs lava-nc 0.10.0, which runs on Python 3.10 only; this is "
            f"Python {sys.version_info.major}.{sys.version_info.minor}",
            hint="run snncc from the project's Python 3.10 environment (`make venv`), or use "
                 "--backend acsim, which runs the same artifact without Lava")
    try:
        import lava.magma.core.run_configs  # noqa: F401
    except ImportError as e:
        raise SnnccError("SNN-LAVA001", f"lava-nc cannot be imported ({e})",
                         hint="install the pinned dependencies (`make venv`), or use "
                              "--backend acsim") from None
