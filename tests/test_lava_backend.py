"""`snncc compile --target loihi` and `snncc run --backend lava`, end to end.

The oracle is acsim's Lava-timed run of the same artifact (itself compared with
real Lava layer by layer in tests/test_lava_timed.py): predictions must be equal.
"""

from __future__ import annotations

import glob
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import CKPT, snncc
from test_lava_timed import _ConvNet

import snncc as api
from snncc.backends.acsim.simulator import run_quantized
from snncc.backends.registry import get_backend
from snncc.examples.firing import set_firing_rates
from snncc.ir.serialize import save_graph


def _classifier() -> torch.nn.Module:
    """The encoded conv net with a host readout: spike counts averaged over time."""

    class Head(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = _ConvNet()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x).mean(0)

    return Head().eval()


def test_compile_for_loihi_and_run_in_lava_predicts_as_acsim(tmp_path: Path) -> None:
    torch.manual_seed(4)
    model = _classifier()
    x = torch.rand(4, 6, 1, 6, 6)
    set_firing_rates(model, x)
    graph = api.compile(api.trace(model, x[:, :1])).graph
    src = tmp_path / "net.snnir"
    save_graph(graph, src)
    torch.save(x, tmp_path / "x.pt")
    torch.save(x[:, :3], tmp_path / "cal.pt")
    out = tmp_path / "net.loihi"
    r = snncc("compile", str(src), "--target", "loihi", "--calibration", str(tmp_path / "cal.pt"),
              "-o", str(out))
    assert r.returncode == 0, r.stderr
    before = set(glob.glob("/dev/shm/psm_*"))
    lava = snncc("run", str(out), "--inputs", str(tmp_path / "x.pt"), "--json")
    assert lava.returncode == 0, lava.stderr
    assert set(glob.glob("/dev/shm/psm_*")) - before == set()  # the runtime was stopped
    got = json.loads(lava.stdout)
    assert got["backend"] == "lava" and got["samples"] == 6 and got["clock"] == "aligned"
    assert {p["kind"] for p in got["processes"]} == {"lif", "dense"}
    assert all(p["where"].startswith("Loihi 2 neurocore") for p in got["processes"])
    compiled = get_backend("loihi").load(out)
    want = run_quantized(compiled.program, x)  # the time-aligned model's run
    assert got["predictions"] == want.predictions.tolist()
    on_lavas_clock = snncc("run", str(out), "--inputs", str(tmp_path / "x.pt"), "--clock", "lava",
                           "--json")
    assert on_lavas_clock.returncode == 0, on_lavas_clock.stderr
    assert json.loads(on_lavas_clock.stdout)["clock"] == "lava"
    assert json.loads(on_lavas_clock.stdout)["predictions"] == run_quantized(
        compiled.program, x, lava_timed=True).predictions.tolist()
    same_artifact = snncc("run", str(out), "--inputs", str(tmp_path / "x.pt"), "--backend",
                          "acsim", "--json")
    assert same_artifact.returncode == 0, same_artifact.stderr
    assert len(json.loads(same_artifact.stdout)["predictions"]) == 6
    assert np.isfinite(want.outputs[0]).all()


class _Cat(torch.nn.Module):
    """Two LIFs concatenated into a linear: a concatenation inside the network."""

    def __init__(self) -> None:
        super().__init__()
        from spikingjelly.clock_driven.neuron import MultiStepLIFNode

        self.a, self.b = torch.nn.Linear(6, 4), torch.nn.Linear(6, 4)
        self.la, self.lb, self.out = (MultiStepLIFNode(tau=2.0, detach_reset=True)
                                      for _ in range(3))
        self.fc = torch.nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.fc(torch.cat([self.la(self.a(x)), self.lb(self.b(x))], -1)))


def test_an_op_the_lava_lowering_lacks_is_named_at_compile_time(tmp_path: Path) -> None:
    graph = api.compile(api.trace(_Cat().eval(), torch.zeros(3, 1, 6), input_kind="spikes")).graph
    src = tmp_path / "cat.snnir"
    save_graph(graph, src)
    r = snncc("compile", str(src), "--target", "loihi", "-o", str(tmp_path / "cat.loihi"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "SNN-LAVA002" in r.stderr and "(cat)" in r.stderr
    assert not (tmp_path / "cat.loihi").exists()


@pytest.mark.parametrize("name", ["spikingformer_digits.pt", "spikformer_digits.pt",
                                  "spikingformer_digits_dts.pt"])
def test_the_digits_models_in_lava_equal_acsim_at_every_layer_and_step(name: str) -> None:
    """Tokenizer convs and max-pools, attention's spike products, Spikformer's graded
    residual stream, DTS's time masks: real Lava and acsim's Lava-timed run agree on
    every neuron layer's spikes at every step, and so on the predictions; Lava's
    aligned run (biases switched on with each layer's first input) gives, in every
    layer's window, acsim's default time-aligned spikes and predictions."""
    from snncc.backends.acsim.program import Program
    from snncc.backends.lava import predict
    from snncc.examples.digits import encode, load_digits_split
    from snncc.passes.quantize import quantize

    graph = api.compile(api.load(str(CKPT / name), input_shape=(4, 1, 1, 8, 8))).graph
    xtr, _, xte, _ = load_digits_split()
    program = Program(quantize(graph, "loihi2", calibration=encode(xtr[:32])))
    x = encode(xte[1:3]).numpy()
    lava = predict(program, x, aligned=False)
    ours = run_quantized(program, x, lava_timed=True)
    for b, spikes in enumerate(lava.spikes):
        for layer, s in spikes.items():
            assert np.array_equal(s, ours.spikes[layer][:, b]), (b, layer)
    assert lava.predictions.tolist() == ours.predictions.tolist()
    assert sum(int(s.sum()) for s in lava.spikes[0].values()) > 0
    # the readout accumulators integrate in Lava what acsim's readout sums over time
    from snncc.backends.acsim.simulator import run_batch

    run, _ = run_batch(program, x, lava_timed=True)
    assert lava.accumulated and all(lava.accumulated)
    for b, totals in enumerate(lava.accumulated):
        for tap, total in totals.items():
            want = np.asarray(run.values[tap])[:, b].sum(axis=0, dtype=np.int64)
            assert np.array_equal(total, want.reshape(total.shape)), (b, tap)
    assert np.allclose(lava.outputs, ours.outputs[0].reshape(lava.outputs.shape), atol=1e-5)

    aligned = predict(program, x)
    trained = run_quantized(program, x)  # acsim's default run, the pruned schedule too
    for b, spikes in enumerate(aligned.windows(x.shape[0])):
        for layer, s in spikes.items():
            run = program.schedule.get(layer)  # a pruned neuron's skipped steps are
            steps = list(range(x.shape[0])) if run is None else run  # masked: unseen
            assert np.array_equal(s[steps], trained.spikes[layer][steps, b]), (b, layer)
    assert aligned.predictions.tolist() == trained.predictions.tolist()
    run, _ = run_batch(program, x)
    for b, totals in enumerate(aligned.accumulated):
        for tap, total in totals.items():
            want = np.asarray(run.values[tap])[:, b].sum(axis=0, dtype=np.int64)
            assert np.array_equal(total, want.reshape(total.shape)), (b, tap)
    # the host's float readout of equal integer sums (batch 1 vs 2: float32 sum order)
    assert np.allclose(aligned.outputs, trained.outputs[0].reshape(aligned.outputs.shape),
                       rtol=1e-6, atol=1e-5)
    from snncc.backends.lava.placement import placement

    processes = placement(program)
    where = {p["kind"]: p["where"] for p in processes}
    assert where["matmul"].startswith("programmable neurons")  # attention is no synapse
    # the tokenizer's convs (and Spikformer's per-token linears) are Lava's own Conv
    assert sum(p["process"].startswith("Conv ") for p in processes) >= 4
    assert where["lif"].startswith("Loihi 2 neurocore")


def test_build_returns_the_connected_processes_for_a_users_pipeline(tmp_path: Path) -> None:
    """snncc.backends.lava.build(OUT): the user runs the network with Lava's own calls."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    from snncc.backends.lava import build

    torch.manual_seed(5)
    model = _classifier()
    x = torch.rand(4, 2, 1, 6, 6)
    set_firing_rates(model, x)
    result = api.compile(model, x[:, :1], target="loihi", calibration=x)
    assert result.compiled is not None
    out = tmp_path / "net.loihi"
    get_backend("loihi").save(result.compiled, out)
    net = build(out, x[:, 0].numpy())
    assert set(net.lifs) == {n.name for n in result.compiled.qg.graph if n.opdef.is_neuron}
    try:
        net.root.run(condition=RunSteps(num_steps=net.steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        last = list(net.sinks)[-1]
        spikes = np.moveaxis(np.asarray(net.sinks[last].data.get()), -1, 0) != 0
    finally:
        net.root.stop()
    want = run_quantized(result.compiled.program, x[:, :1], lava_timed=True).spikes[last][:, 0]
    assert np.array_equal(spikes, want.reshape(spikes.shape))


def test_lava_on_another_python_is_one_clear_line(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import sys
    from collections import namedtuple

    from snncc.backends.lava import require_lava
    from snncc.diagnostics import SnnccError

    version = namedtuple("version", "major minor micro releaselevel serial")
    monkeypatch.setattr(sys, "version_info", version(3, 11, 7, "final", 0))
    with pytest.raises(SnnccError) as e:
        require_lava()
    assert e.value.code == "SNN-LAVA001" and "Python 3.11" in str(e.value)
    assert "--backend acsim" in (e.value.diagnostic.hint or "")


def test_a_run_past_its_timeout_is_stopped_and_freed(tmp_path: Path) -> None:
    """--timeout: the Lava run is stopped, its workers and shared memory freed, exit 2."""
    import subprocess

    torch.manual_seed(6)
    model = _classifier()
    x = torch.rand(4, 3, 1, 6, 6)
    result = api.compile(model, x[:, :1], target="loihi")
    assert result.compiled is not None
    out = tmp_path / "net.loihi"
    get_backend("loihi").save(result.compiled, out)
    torch.save(x, tmp_path / "x.pt")
    before = set(glob.glob("/dev/shm/psm_*"))
    r = snncc("run", str(out), "--inputs", str(tmp_path / "x.pt"), "--timeout", "0.3")
    assert r.returncode == 2 and "SNN-LAVA003" in r.stderr and "Traceback" not in r.stderr
    assert set(glob.glob("/dev/shm/psm_*")) - before == set()
    ps = subprocess.run(["ps", "-eo", "cmd="], capture_output=True, text=True).stdout
    assert str(out) not in ps  # no worker of that run is left


def test_the_loihi_report_marks_spikformers_graded_stream_as_non_spike_traffic(
        tmp_path: Path) -> None:
    """Spikformer's VIOLATIONs (its residual stream of spike counts into q, k, v and fc1)
    are graded payloads: the compile report marks those processes as non-spike traffic,
    and gives every LIF's and synapse's cores against the per-core limits."""
    out = tmp_path / "s.loihi"
    r = snncc("compile", str(CKPT / "spikformer_digits.pt"), "--input-shape", "4,1,1,8,8",
              "--target", "loihi", "-o", str(out), "--json")
    assert r.returncode == 0, r.stderr
    lava = json.loads(r.stdout)["lava"]
    procs, limits = lava["processes"], lava["limits"]
    graded = {p["process"] for p in procs if p["traffic"].startswith("graded")}
    for q in ("q", "k", "v"):  # the stream (a sum of spikes) into the attention's linears
        assert f"Dense %patch_embed_add -> %block_0_attn_{q}_lif" in graded
    assert "Conv %block_0_add -> %block_0_mlp_fc1_lif" in graded
    assert "SnnccOp %block_0_attn_matmul" in graded  # q @ k^T: counts
    spikes = [p for p in procs if p["kind"] == "lif"]
    assert spikes and all(p["traffic"] == "spikes" for p in spikes)
    for p in procs:
        if p["kind"] in ("lif", "dense"):
            assert p["cores"] >= 1 and 0 < p["core_neurons"] <= limits["neurons_per_core"]
            assert p["core_memory_bytes"] <= limits["memory_bytes_per_core"]
            assert p["core_fan_in"] <= limits["fan_in_per_core"]
    text = snncc("compile", str(CKPT / "spikformer_digits.pt"), "--input-shape", "4,1,1,8,8",
                 "--target", "loihi", "-o", str(out))
    assert "non-spike traffic" in text.stdout and "Lava network" in text.stdout


def test_a_target_the_model_does_not_fit_is_refused_before_any_lava_process(
        tmp_path: Path) -> None:
    """--target loihi on a board with one chip of 4 cores: the digits Spikingformer needs
    more; the error names the first layer that does not fit, the limit and how many
    chips it needs, nothing is written, and no Lava runtime was started (no worker, no
    shared memory; the compile never imports Lava's runtime)."""
    text = Path("snncc/targets/loihi2.yaml").read_text()
    assert "  chips: 8 " in text and "usable_cores: 120" in text
    small = tmp_path / "small.yaml"
    small.write_text(text.replace("name: loihi2", "name: small").replace("  chips: 8 ", "  chips: 1 ")
                     .replace("usable_cores: 120", "usable_cores: 4"))
    out = tmp_path / "x.loihi"
    before = set(glob.glob("/dev/shm/psm_*"))
    code = ("import sys; sys.argv = ['snncc'] + sys.argv[1:]\n"
            "from snncc.entry import main\n"
            "try:\n    main()\nfinally:\n"
            "    assert 'lava.magma.runtime.runtime' not in sys.modules, 'Lava started'\n")
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", code, "compile", str(CKPT / "spikingformer_digits.pt"),
                        "--input-shape", "4,1,1,8,8", "--target", "loihi", "--hardware", str(small),
                        "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert "SNN-MAP005" in r.stderr and "is the first that does not fit" in r.stderr
    assert "1 chip of small (4 cores)" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()
    assert set(glob.glob("/dev/shm/psm_*")) - before == set()
