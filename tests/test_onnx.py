"""ONNX in and out: the digits models export to files that pass the full ONNX checker
(the ai.snncc schemas included), import back with identical outputs, standard-op
models import, and bad files are named errors (exit 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import snncc
from snncc.api import canonicalize
from snncc.backends.onnx import save_onnx, to_onnx
from snncc.cli import main
from snncc.diagnostics import SnnccError
from snncc.ir.interpreter import run

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "examples" / "checkpoints"
DIGITS = ["spikformer_digits", "spikingformer_digits", "spikingformer_digits_dts"]


@pytest.mark.parametrize("name", DIGITS)
def test_digits_round_trip(tmp_path: Path, name: str) -> None:
    graph = canonicalize(snncc.load(CKPT / f"{name}.pt", input_shape=(4, 1, 1, 8, 8)))
    model = to_onnx(graph)
    onnx.checker.check_model(model, full_check=True)
    custom = {n.op_type for n in model.graph.node if n.domain == "ai.snncc"}
    assert "lif" in custom and ("time_mask" in custom) == name.endswith("dts")
    path = tmp_path / "m.onnx"
    save_onnx(model, path)
    back = snncc.load(path)
    x = torch.rand(4, 1, 1, 8, 8)
    assert torch.equal(run(back, [x])[0][0], run(graph, [x])[0][0])
    assert torch.equal(run(canonicalize(back), [x])[0][0], run(graph, [x])[0][0])


def test_a_fresh_process_checks_a_written_file(tmp_path: Path) -> None:
    import subprocess
    import sys

    graph = canonicalize(snncc.load(CKPT / "spikingformer_digits.pt", input_shape=(4, 1, 1, 8, 8)))
    save_onnx(to_onnx(graph), tmp_path / "m.onnx")
    code = ("import onnx, sys; from snncc.backends.onnx import register_all; register_all(); "
            "onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True); print('ok')")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.onnx")], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_the_checker_reads_the_snncc_schemas() -> None:
    graph = canonicalize(snncc.load(CKPT / "spikingformer_digits.pt", input_shape=(4, 1, 1, 8, 8)))
    model = to_onnx(graph)
    lif = next(n for n in model.graph.node if n.op_type == "lif")
    lif.attribute.append(helper.make_attribute("taux", 2.0))  # a typo'd attribute
    with pytest.raises(onnx.checker.ValidationError):
        onnx.checker.check_model(model, full_check=True)


def _standard_model(w: np.ndarray, b: np.ndarray, fc: np.ndarray, T: int = 4) -> onnx.ModelProto:
    """Reshape -> Conv -> BatchNormalization -> Reshape -> ai.snncc lif -> ReduceMean over
    time -> Flatten -> Gemm: an SNN as another tool could write it."""
    c = w.shape[0]
    inits = [numpy_helper.from_array(a, k) for k, a in [
        ("flat", np.array([T, 1, 8, 8], np.int64)), ("w", w), ("b", b),
        ("g", np.full(c, 1.5, np.float32)), ("beta", np.full(c, 0.1, np.float32)),
        ("mu", np.full(c, 0.2, np.float32)), ("var", np.full(c, 0.5, np.float32)),
        ("split", np.array([T, 1, c, 8, 8], np.int64)), ("fc", fc)]]
    nodes = [
        helper.make_node("Reshape", ["x", "flat"], ["x4"], name="merge"),
        helper.make_node("Conv", ["x4", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1],
                         kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["c", "g", "beta", "mu", "var"], ["bn"],
                         name="bn", epsilon=1e-5),
        helper.make_node("Reshape", ["bn", "split"], ["y"], name="split"),
        helper.make_node("lif", ["y"], ["s"], name="lif", domain="ai.snncc", tau=2.0,
                         v_threshold=1.0),
        helper.make_node("ReduceMean", ["s"], ["m"], name="mean", axes=[0], keepdims=0),
        helper.make_node("Flatten", ["m"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "fc"], ["out"], name="head", transB=1),
    ]
    g = helper.make_graph(nodes, "std", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [T, 1, 1, 8, 8])], [helper.make_tensor_value_info(
            "out", TensorProto.FLOAT, [1, 10])], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                               helper.make_opsetid("ai.snncc", 1)])


def test_standard_ops_import(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32) * 0.1
    fc = rng.standard_normal((10, 256)).astype(np.float32)
    path = tmp_path / "std.onnx"
    onnx.save(_standard_model(w, b, fc), path)
    graph = snncc.load(path)
    x = torch.rand(4, 1, 1, 8, 8)
    got = run(graph, [x])[0][0]
    y = torch.nn.functional.conv2d(x.flatten(0, 1), torch.from_numpy(w), torch.from_numpy(b),
                                   padding=1)
    y = (y - 0.2) / torch.sqrt(torch.tensor(0.5 + 1e-5)) * 1.5 + 0.1
    v, spikes = torch.zeros(4, 8, 8), []
    for t in range(4):
        v = v + (y[t] - v) / 2.0
        s = (v >= 1.0).float()
        v = v * (1 - s)
        spikes.append(s)
    want = torch.stack(spikes).mean(0).reshape(1, 256) @ torch.from_numpy(fc).T
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_a_model_pytorch_exported(tmp_path: Path) -> None:
    """torch.onnx.export writes x.flatten(0, 1) as Shape/Slice/Concat arithmetic on the
    input's shape; with a static shape snncc folds it to constants."""

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4)
            self.pool, self.fc = torch.nn.AvgPool2d(2), torch.nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.pool(self.bn(self.conv(x.flatten(0, 1))))
            return self.fc(y.reshape(x.shape[0], x.shape[1], 64)).mean(0)

    net = Net().eval()
    x = torch.rand(4, 2, 1, 8, 8)
    path = tmp_path / "torch.onnx"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), str(path), dynamo=False, opset_version=17)
    assert "Shape" in {n.op_type for n in onnx.load(str(path)).graph.node}
    graph = snncc.load(path)
    with torch.no_grad():
        torch.testing.assert_close(run(graph, [x])[0][0], net(x), rtol=1e-5, atol=1e-5)


def _err(path: Path) -> str:
    with pytest.raises(SnnccError) as e:
        snncc.load(path)
    return e.value.diagnostic.render()


def test_unsupported_op_names_every_node(tmp_path: Path) -> None:
    nodes = [helper.make_node("Softmax", ["x"], ["a"], name="attn_softmax"),
             helper.make_node("Erf", ["a"], ["y"], name="gelu_erf")]
    g = helper.make_graph(nodes, "bad", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [4, 1, 8])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [4, 1, 8])])
    path = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(g), path)
    msg = _err(path)
    assert "SNN-ONNX002" in msg and "'attn_softmax' (Softmax)" in msg and "'gelu_erf' (Erf)" in msg
    r = CliRunner().invoke(main, ["inspect", str(path)])
    assert r.exit_code == 2 and "SNN-ONNX002" in r.output


def test_truncated_file(tmp_path: Path) -> None:
    graph = canonicalize(snncc.load(CKPT / "spikingformer_digits.pt", input_shape=(4, 1, 1, 8, 8)))
    data = to_onnx(graph).SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 3])
    assert "SNN-ONNX00" in _err(path)
    r = CliRunner().invoke(main, ["inspect", str(path)])
    assert r.exit_code == 2


def test_cli_target_onnx(tmp_path: Path) -> None:
    out = tmp_path / "s.onnx"
    r = CliRunner().invoke(main, ["compile", str(CKPT / "spikformer_digits.pt"), "--input-shape",
                                  "4,1,1,8,8", "--target", "onnx", "-o", str(out)])
    assert r.exit_code == 0, r.output
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)


class _Structural(torch.nn.Module):
    """cat, slice, pad, permute, transpose, unsqueeze, repeat, reductions, scalars."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([x, x * 2.0], dim=2)[:, :, 1:3]
        y = torch.nn.functional.pad(y, (1, 1, 0, 2), value=0.5)
        y = (1.0 - y).permute(0, 1, 2, 4, 3).transpose(3, 4) + 0.25
        z = y.amax(dim=4).unsqueeze(2).repeat(1, 1, 2, 1, 1)
        return z.sum(dim=2) - y.mean(dim=4)


def test_structural_ops_round_trip(tmp_path: Path) -> None:
    x = torch.rand(3, 2, 2, 5, 6)
    graph = canonicalize(snncc.trace(_Structural(), x))
    ops = {n.op for n in graph}
    assert {"cat", "slice", "pad", "repeat", "unsqueeze", "amax", "sum"} <= ops, ops
    model = to_onnx(graph)
    onnx.checker.check_model(model, full_check=True)
    save_onnx(model, tmp_path / "s.onnx")
    back = snncc.load(tmp_path / "s.onnx")
    assert torch.equal(run(back, [x])[0][0], run(graph, [x])[0][0])


def test_encoding_conv_and_bn_run_in_onnxruntime(tmp_path: Path) -> None:
    """The traced (unfolded) Spikingformer exports its encoding conv and BN as standard
    ops; cut out (onnx.utils.extract_model), they run in onnxruntime with the IR
    interpreter's values."""
    ort = pytest.importorskip("onnxruntime")
    graph = snncc.load(CKPT / "spikingformer_digits.pt", input_shape=(4, 1, 1, 8, 8))
    path = tmp_path / "raw.onnx"
    save_onnx(to_onnx(graph), path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    bn = next(n.name for n in graph if n.op == "batchnorm")
    onnx.utils.extract_model(str(path), str(tmp_path / "enc.onnx"), [graph.inputs[0]], [bn])
    enc = onnx.load(str(tmp_path / "enc.onnx"))
    assert {n.op_type for n in enc.graph.node} == {"Reshape", "Conv", "BatchNormalization"}
    x = torch.rand(4, 1, 1, 8, 8)
    _, values = run(graph, [x], record=True)
    session = ort.InferenceSession(str(tmp_path / "enc.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {graph.inputs[0]: x.numpy()})[0]
    np.testing.assert_allclose(got, values[bn].numpy(), rtol=1e-5, atol=1e-5)
    back = snncc.load(path)  # and the whole unfolded graph reads back
    assert torch.equal(run(back, [x])[0][0], run(graph, [x])[0][0])


def test_byte_mutations_are_named_errors(tmp_path: Path) -> None:
    """Seeded byte mutations of an ONNX file: each loads to a verified graph or raises
    SnnccError; never another exception."""
    import random

    from test_fuzz_readers import mutate_bytes

    from snncc.ir.graph import verify

    rng = np.random.default_rng(1)
    model = _standard_model(rng.standard_normal((4, 1, 3, 3)).astype(np.float32),
                            np.zeros(4, np.float32),
                            rng.standard_normal((10, 256)).astype(np.float32))
    data = model.SerializeToString()
    r = random.Random("onnx-bytes")
    errors = 0
    for i in range(300):
        path = tmp_path / f"mutant{i}.onnx"
        path.write_bytes(mutate_bytes(data, r))
        try:
            verify(snncc.load(path))
        except SnnccError:
            errors += 1
    assert errors > 50
