"""Ctrl-C (SIGINT to the process group) or SIGTERM during a Lava run stops it: the run
ends within seconds with an exit code that is not 1 (1 means violations), and leaves
no live worker process and no shared-memory segment behind."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time

import pytest

RUN = """
import numpy as np
from snncc.backends.acsim.chain import DenseSpec, LifSpec
from snncc.backends.lava import run_lava_chain
rng = np.random.default_rng(0)
layers = [(DenseSpec(weights=rng.integers(-100, 200, (8, 6))), LifSpec(du=100, dv=200, vth=50)),
          (DenseSpec(weights=rng.integers(-100, 200, (4, 8))), LifSpec(du=100, dv=200, vth=50))]
print("running", flush=True)
run_lava_chain(layers, rng.random((100000, 6)) < 0.3, record_state=False)
print("finished", flush=True)
"""


def _live(session: int) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid=,sid=,stat=,cmd="], capture_output=True,
                         text=True).stdout
    return [line for line in out.splitlines()
            if int(line.split()[1]) == session and not line.split()[2].startswith("Z")]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_lava_run_and_frees_everything(sig: signal.Signals) -> None:
    before = set(glob.glob("/dev/shm/psm_*"))
    p = subprocess.Popen([sys.executable, "-c", RUN], start_new_session=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "running"
    _, code = _interrupt_when_running(p, sig, before)
    assert code not in (0, 1)


def _interrupt_when_running(p: subprocess.Popen[str], sig: signal.Signals,
                            before: set[str]) -> tuple[str, int]:
    """Wait until the run has Lava's workers, signal its process group, and check that
    it ends leaving no worker and no shared-memory segment; its stderr and exit code."""
    try:
        deadline = time.monotonic() + 90
        while len(_live(p.pid)) <= 3 and time.monotonic() < deadline:
            time.sleep(0.5)  # imports, then Lava compiles and forks its workers
        assert len(_live(p.pid)) > 3, "Lava should be running its worker processes"
        time.sleep(1)  # stepping
        os.killpg(p.pid, sig)
        _, err = p.communicate(timeout=60)
        time.sleep(1)
        assert _live(p.pid) == []
        assert set(glob.glob("/dev/shm/psm_*")) - before == set()
        return err, p.returncode
    finally:
        if _live(p.pid):
            os.killpg(p.pid, signal.SIGKILL)


def test_ctrl_c_in_any_command_is_one_line_and_exit_130(capsys: pytest.CaptureFixture[str]) -> None:
    """Not 1 (which means violations) and no traceback."""
    from snncc.cli import guarded

    @guarded
    def command() -> None:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as info:
        command()
    assert info.value.code == 130
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["snncc: interrupted; no output was written"]


def test_ctrl_c_during_start_up_is_one_line() -> None:
    """The console script imports torch before any command runs; a Ctrl-C then is one
    line and exit 130 too (snncc.entry imports the CLI under its own guard)."""
    code = "import sys; sys.argv = ['snncc', '--help']; from snncc.entry import main; main()"
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)  # well inside the imports (about 2 s here)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "snncc: interrupted"


def test_ctrl_c_during_snncc_run_on_lava_frees_every_process_and_segment(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The graph runner (`snncc run X.loihi`, many samples): Ctrl-C to the process group
    while Lava steps ends it with exit 130 and one line, no worker and no shared-memory
    segment left."""
    import torch
    from test_lava_backend import _classifier

    import snncc as api
    from snncc.backends.registry import get_backend

    torch.manual_seed(6)
    x = torch.rand(4, 400, 1, 6, 6)
    result = api.compile(_classifier(), x[:, :1], target="loihi")
    assert result.compiled is not None
    get_backend("loihi").save(result.compiled, tmp_path / "net.loihi")
    torch.save(x, tmp_path / "x.pt")
    code = ("import sys; sys.argv = ['snncc', 'run', sys.argv[1], '--inputs', sys.argv[2]]; "
            "from snncc.entry import main; main()")
    before = set(glob.glob("/dev/shm/psm_*"))
    p = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "net.loihi"),
                          str(tmp_path / "x.pt")], start_new_session=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err, code = _interrupt_when_running(p, signal.SIGINT, before)
    assert code == 130 and "Traceback" not in err, err
