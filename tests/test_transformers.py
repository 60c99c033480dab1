"""The spiking transformers the product exists for: the check finds what the
papers say, and the interpreter computes what PyTorch computes."""

from __future__ import annotations

import pytest
import torch
from snn_models import forward_reset, randomize_bn

from snncc.api import check_spike_only
from snncc.examples.spikformer import spikformer_cifar_4_384, spikformer_digits
from snncc.examples.spikingformer import spikingformer_cifar_4_384, spikingformer_digits
from snncc.frontends.torch import trace
from snncc.ir import run
from snncc.passes import CANONICALIZE, run_passes


def _findings(model):
    report = check_spike_only(model.eval(), torch.zeros(4, 1, 3, 32, 32)).report
    return report, {(f.module_path, f.cls.value) for f in report.findings}


def test_spikformer_4_384_violations_are_the_residual_stream() -> None:
    report, found = _findings(spikformer_cifar_4_384())
    expected = {f"block.{b}.{m}" for b in range(4)
                for m in ("attn.q_linear", "attn.k_linear", "attn.v_linear", "mlp.fc1_linear")}
    violations = {f.module_path: f for f in report.violations}
    assert set(violations) == expected
    for path, f in violations.items():
        assert "from the add at" in f.message and f.provenance
        assert f.operand_kinds == ["COUNT"]
        assert "Spikingformer" in (f.hint or "")
        if path.startswith("block.1.attn"):  # the residual add of the block before is named
            assert "`block.0`" in f.message
    assert ("head", "READOUT_MAC") in found
    assert ("patch_embed.proj_conv", "ENCODING_MAC") in found
    # the 0.125 attention scale is folded into attn_lif's threshold, not reported
    assert not [f for f in report.findings if f.op == "scale"]


def test_spikingformer_4_384_is_spike_driven() -> None:
    report, found = _findings(spikingformer_cifar_4_384())
    assert report.ok and not report.violations
    assert ("head", "READOUT_MAC") in found
    assert ("patch_embed.proj_conv", "ENCODING_MAC") in found
    assert report.summary()["READOUT_MAC"] == 1 and report.summary()["ENCODING_MAC"] == 1


def test_attention_scale_is_folded_into_the_threshold() -> None:
    g = run_passes(trace(spikformer_digits().eval(), torch.zeros(4, 1, 1, 8, 8)), CANONICALIZE).graph
    attn_lif = next(n for n in g if n.origin.module_path.endswith("attn.attn_lif"))
    assert attn_lif.attrs.v_threshold == pytest.approx(0.5 / 0.125)  # type: ignore[attr-defined]


@pytest.mark.parametrize("factory", [spikformer_digits, spikingformer_digits])
def test_interpreter_equals_pytorch_before_and_after_canonicalization(factory) -> None:
    torch.manual_seed(0)
    model = randomize_bn(factory())
    x = torch.rand(4, 16, 1, 8, 8) * 2
    ref = forward_reset(model, x)
    g = trace(model, x)
    c = run_passes(g, CANONICALIZE).graph
    (out_g,), vg = run(g, [x], record=True)
    (out_c,), vc = run(c, [x], record=True)
    assert torch.allclose(out_g, ref, atol=1e-5, rtol=0)
    assert torch.allclose(out_c, ref, atol=1e-5, rtol=0)
    spikes_g = {n.origin.module_path: vg[n.name] for n in g if n.opdef.is_neuron}
    spikes_c = {n.origin.module_path: vc[n.name] for n in c if n.opdef.is_neuron}
    assert spikes_g.keys() == spikes_c.keys()
    for k in spikes_g:
        assert torch.equal(spikes_g[k], spikes_c[k]), k


@pytest.mark.parametrize("factory,published", [(spikformer_cifar_4_384, 9.3309e6),
                                               (spikingformer_cifar_4_384, 9.3263e6)])
def test_inspect_parameter_count_equals_the_module_count(factory, published: float) -> None:
    from snncc.analysis.summary import summarize

    model = factory().eval()
    own = sum(p.numel() for p in model.parameters())
    summary = summarize(trace(model, torch.zeros(4, 1, 3, 32, 32)))
    assert summary["parameters"] == own
    assert round(own / 1e2) * 1e2 == pytest.approx(published, abs=50)
    # the unused LayerNorms are found and named
    assert set(summary["unused_modules"]) == {f"block.{b}.norm{i}" for b in range(4) for i in (1, 2)}
