"""Model files load without running their code; anything else is refused by name.

Every refusal is checked for its code, for naming the file (or the global), for a hint,
and, where the file carries a payload, for the payload not having run.
"""

from __future__ import annotations

import os
import pickle
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from pickletools import genops
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import neuron as ab
from spikingjelly.activation_based import surrogate as ab_surrogate
from spikingjelly.clock_driven import neuron as cd
from torch import nn

from snncc.diagnostics import SnnccError
from snncc.examples.spikformer import spikformer_digits
from snncc.loading import load_model, pickle_globals, scan_globals

CKPT = Path(__file__).resolve().parents[1] / "examples" / "checkpoints"


class Outsider(nn.Module):
    """A user's class outside the allowlist (this test module)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def factory() -> nn.Sequential:
    """The --arch factory the state_dict tests name (test_loading:factory)."""
    return nn.Sequential(nn.Linear(3, 4), cd.MultiStepLIFNode(tau=2.0, backend="torch"))


def wide_factory() -> nn.Sequential:
    """Same keys as factory(), other shapes: a size mismatch."""
    return nn.Sequential(nn.Linear(3, 5), cd.MultiStepLIFNode(tau=2.0, backend="torch"))


def not_a_module() -> int:
    return 3


def failing_factory() -> nn.Module:
    raise RuntimeError("no GPU here")


class Payload:
    """Pickles as a call that would create ``marker``; loading must never make that call."""

    def __init__(self, call: Callable[..., Any], marker: Path) -> None:
        self.call, self.marker = call, marker

    def __reduce__(self) -> tuple[Any, ...]:
        if self.call is os.system:
            return (os.system, (f"touch {self.marker}",))
        return (self.call, (f"open({str(self.marker)!r}, 'w').close()",))


def refused(path: Path, code: str, *needles: str, **kw: Any) -> SnnccError:
    """Load ``path``, expect SnnccError ``code`` whose message names the path and each
    needle and which has a hint."""
    with pytest.raises(SnnccError) as info:
        load_model(path, **kw)
    err = info.value
    assert err.code == code, str(err)
    assert str(path) in err.diagnostic.message, str(err)
    assert err.diagnostic.location.file == str(path)
    for needle in needles:
        assert needle in str(err), (needle, str(err))
    assert err.diagnostic.hint, str(err)
    return err


def reset(model: nn.Module) -> None:
    """Clear the neurons' membrane state, so that two runs start alike."""
    m: Any
    for m in model.modules():
        if hasattr(m, "reset"):
            m.reset()


def zip_with_pickle(path: Path, data: bytes) -> Path:
    """A torch-style zip archive whose data.pkl is ``data`` (crafted files)."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", data)
        z.writestr("archive/version", "3\n")
    return path


# ---- what loads ------------------------------------------------------------------------------


def test_spikingjelly_model_round_trips_with_equal_outputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(3, 8), cd.MultiStepLIFNode(tau=2.0, detach_reset=True, backend="torch"),
        nn.Linear(8, 8), ab.LIFNode(step_mode="m"),
        nn.Linear(8, 8), ab.ParametricLIFNode(step_mode="m", surrogate_function=ab_surrogate.ATan()),
        nn.Linear(8, 8), cd.MultiStepParametricLIFNode(),
        nn.Linear(8, 8), ab.IFNode(step_mode="m"),
        nn.Linear(8, 8), cd.MultiStepIFNode(),
    ).eval()
    with torch.no_grad():  # excitatory weights, so that spikes reach every layer
        for layer in model:
            if isinstance(layer, nn.Linear):
                layer.weight.abs_()
                layer.bias.fill_(0.7)
    x = torch.rand(8, 2, 3) * 4
    model(x)  # saved with membrane state set, as after an evaluation run
    torch.save(model, tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.example_input is None and loaded.source == str(tmp_path / "m.pt")
    assert [type(m) for m in loaded.module.modules()] == [type(m) for m in model.modules()]

    def every_layer(net: Any) -> list[torch.Tensor]:
        reset(net)
        outs, h = [], x
        for layer in net:
            h = layer(h)
            outs.append(h)
        return outs

    ours, theirs = every_layer(loaded.module), every_layer(model)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    assert all(t.sum() > 0 for t in theirs[1::2]), "every neuron layer spikes: a real comparison"


def test_snncc_example_classes_load_without_trust(tmp_path: Path) -> None:
    model = spikformer_digits().eval()
    torch.save(model, tmp_path / "s.pt")
    loaded = load_model(tmp_path / "s.pt").module.eval()
    x = (torch.rand(4, 1, 1, 8, 8) > 0.5).float()
    reset(model)
    assert torch.equal(loaded(x), model(x))
    assert isinstance(load_model(CKPT / "spikingformer_digits.pt").module, nn.Module)


def test_ordinary_module_attributes_load(tmp_path: Path) -> None:
    """What module attributes pickle to: NumPy scalars/arrays, slices, ranges, dtypes, devices,
    and activation functions, including C ones (F.gelu pickles as torch._C._nn.gelu)."""
    model: Any = nn.Linear(2, 2)
    model.tau = np.float64(2.0)
    model.table = np.arange(3)
    model.window, model.steps, model.tags = slice(1, 3), range(4), frozenset({"a"})
    model.dtype_, model.device_ = torch.float16, torch.device("cpu")
    model.act, model.act2 = F.gelu, F.silu
    torch.save(model, tmp_path / "m.pt")
    loaded: Any = load_model(tmp_path / "m.pt").module
    assert loaded.tau == 2.0 and list(loaded.table) == [0, 1, 2] and loaded.act is F.gelu


def test_dict_checkpoint_carries_example_input(tmp_path: Path) -> None:
    torch.save({"model": factory(), "example_input": torch.zeros(4, 1, 3)}, tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    assert isinstance(loaded.module, nn.Sequential)
    assert loaded.example_input is not None and loaded.example_input.shape == (4, 1, 3)


def test_state_dict_with_arch(tmp_path: Path) -> None:
    model: Any = factory()
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    loaded: Any = load_model(tmp_path / "sd.pt", arch="test_loading:factory").module
    assert torch.equal(loaded[0].weight, model[0].weight)
    assert isinstance(loaded, nn.Sequential)
    # a training checkpoint that keeps the weights under a key, with an example input
    torch.save({"model_state_dict": model.state_dict(), "epoch": 3,
                "example_input": torch.ones(2, 1, 3)}, tmp_path / "ck.pt")
    ck = load_model(tmp_path / "ck.pt", arch="test_loading:factory")
    ck_model: Any = ck.module
    assert torch.equal(ck_model[0].bias, model[0].bias)
    assert ck.example_input is not None and ck.example_input.shape == (2, 1, 3)


def test_legacy_format_state_dict_loads(tmp_path: Path) -> None:
    model: Any = factory()
    torch.save(model.state_dict(), tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    loaded: Any = load_model(tmp_path / "old.pt", arch="test_loading:factory").module
    assert torch.equal(loaded[0].weight, model[0].weight)


def test_globals_are_read_from_opcodes() -> None:
    # protocol 4 memoizes the module string and fetches it again with BINGET
    data = pickle.dumps((nn.modules.linear.Linear, nn.modules.linear.Identity), protocol=4)
    assert {"MEMOIZE", "BINGET", "STACK_GLOBAL"} <= {op.name for op, _, _ in genops(data)}
    assert pickle_globals(data) == ["torch.nn.modules.linear.Linear",
                                    "torch.nn.modules.linear.Identity"]
    # protocol 2 (torch.save's): GLOBAL, with Python 2 names mapped as torch maps them
    assert pickle_globals(pickle.dumps(({1}, range(2)), protocol=2)) == [
        "builtins.set", "builtins.range"]
    # a STACK_GLOBAL whose operands are not both plain strings cannot be named: opaque
    crafted = b"\x80\x04" + b"\x8c\x02os" + b"K\x01" + b"\x93" + b"."
    assert scan_globals(crafted) == ([], True)


# ---- what is refused -------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    refused(tmp_path / "missing.pt", "SNN-LOAD001", "no such model file")
    refused(tmp_path, "SNN-LOAD001", "not a file")


def test_truncated_file_gives_the_offset(tmp_path: Path) -> None:
    torch.save(factory(), tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "half.pt").write_bytes(data[: len(data) // 2])
    err = refused(tmp_path / "half.pt", "SNN-LOAD002", "truncated", str(len(data) // 2))
    assert err.diagnostic.location.offset == len(data) // 2


def test_not_a_torch_file(tmp_path: Path) -> None:
    (tmp_path / "notes.pt").write_text("hello")
    refused(tmp_path / "notes.pt", "SNN-LOAD002", "not a PyTorch model file")
    (tmp_path / "plain.pt").write_bytes(pickle.dumps([1]))
    refused(tmp_path / "plain.pt", "SNN-LOAD002", "plain pickle")


def test_corrupt_pickle_inside_the_archive(tmp_path: Path) -> None:
    good = pickle.dumps(nn.Linear(1, 1).state_dict(), protocol=2)
    path = zip_with_pickle(tmp_path / "bad.pt", good[: len(good) // 3])
    err = refused(path, "SNN-LOAD002", "corrupt pickle")
    assert err.diagnostic.location.offset is not None


def test_non_model_content(tmp_path: Path) -> None:
    torch.save([1, 2, 3], tmp_path / "list.pt")
    refused(tmp_path / "list.pt", "SNN-LOAD004", "holds a list, not an nn.Module")
    torch.save({"lr": 0.1}, tmp_path / "cfg.pt")
    refused(tmp_path / "cfg.pt", "SNN-LOAD004", "'lr'")


def test_state_dict_errors(tmp_path: Path) -> None:
    torch.save(factory().state_dict(), tmp_path / "sd.pt")
    err = refused(tmp_path / "sd.pt", "SNN-LOAD004", "holds a state_dict", "--arch")
    assert "factory" in (err.diagnostic.hint or "")
    refused(tmp_path / "sd.pt", "SNN-LOAD005", "no_such_module", arch="no_such_module:f")
    refused(tmp_path / "sd.pt", "SNN-LOAD005", "nope", arch="test_loading:nope")
    refused(tmp_path / "sd.pt", "SNN-LOAD005", "module:factory", arch="test_loading.factory")
    refused(tmp_path / "sd.pt", "SNN-LOAD005", "no GPU here", arch="test_loading:failing_factory")
    refused(tmp_path / "sd.pt", "SNN-LOAD005", "not an nn.Module", arch="test_loading:not_a_module")
    refused(tmp_path / "sd.pt", "SNN-LOAD006", "missing 2 key(s): fc.bias, fc.weight",
            "unexpected 2 key(s): 0.bias, 0.weight", arch="test_loading:Outsider")
    refused(tmp_path / "sd.pt", "SNN-LOAD006", "size mismatch", arch="test_loading:wide_factory")


@pytest.mark.parametrize("call,protocol,name", [
    (os.system, 2, "os.system"),
    (os.system, 4, "os.system"),  # STACK_GLOBAL: refused before torch sees it
    (eval, 2, "builtins.eval"),
    (exec, 2, "builtins.exec"),
])
def test_code_in_the_file_is_refused_and_does_not_run(tmp_path: Path, call: Callable[..., Any],
                                                       protocol: int, name: str) -> None:
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    torch.save({"model": Payload(call, marker)}, path, pickle_protocol=protocol)
    err = refused(path, "SNN-LOAD003", name)
    assert "--trust" in (err.diagnostic.hint or "")
    # naming the module does not open it: these never load without --trust
    refused(path, "SNN-LOAD003", name, allow=["os", "posix", "builtins"])
    assert not marker.exists(), "the file's code must not run"


def test_class_outside_the_allowlist_is_named_and_can_be_allowed(tmp_path: Path) -> None:
    torch.save(Outsider(), tmp_path / "m.pt")
    err = refused(tmp_path / "m.pt", "SNN-LOAD003", "test_loading.Outsider")
    hint = err.diagnostic.hint or ""
    assert "--allow test_loading" in hint and "classes only" in hint and "--trust" in hint
    assert isinstance(load_model(tmp_path / "m.pt", allow=["test_loading"]).module, Outsider)
    assert isinstance(load_model(tmp_path / "m.pt", allow=["test_loading.Outsider"]).module,
                      Outsider)
    assert isinstance(load_model(tmp_path / "m.pt", trust=True).module, Outsider)


def test_functions_are_refused_even_when_their_package_is_allowed(tmp_path: Path) -> None:
    """--allow admits classes, never callables that act: snncc's load_model, torch's
    collect_env.run (a shell command) or any function named by a crafted file needs
    --trust, and the refusal does not suggest --allow for it."""
    model: Any = nn.Linear(2, 2)
    model.hook = load_model
    torch.save(model, tmp_path / "m.pt")
    err = refused(tmp_path / "m.pt", "SNN-LOAD003", "snncc.loading.load_model")
    assert "--allow" not in (err.diagnostic.hint or "")
    err = refused(tmp_path / "m.pt", "SNN-LOAD003", "snncc.loading.load_model",
                  allow=["snncc.loading"])
    assert any("only model classes" in n for n in err.diagnostic.notes)
    assert "--allow" not in (err.diagnostic.hint or "")
    assert load_model(tmp_path / "m.pt", trust=True).module.hook is load_model
    payload = zip_with_pickle(tmp_path / "run.pt",
                              b"\x80\x02ctorch.utils.collect_env\nrun\nX\x04\x00\x00\x00"
                              b"trueq\x00\x85R.")
    for allow in (["torch"], ["torch.utils.collect_env"], ["torch.utils.collect_env.run"]):
        refused(payload, "SNN-LOAD003", "collect_env.run", allow=allow)


def test_a_main_module_is_never_imported_to_vet_a_name(tmp_path: Path) -> None:
    """Importing snncc.cli.__main__ would run the CLI: such a name is refused unimported."""
    sys.modules.pop("snncc.cli.__main__", None)
    path = zip_with_pickle(tmp_path / "m.pt", b"\x80\x02csnncc.cli.__main__\nmain\n)R.")
    for allow in ([], ["snncc"], ["snncc.cli.__main__"]):
        refused(path, "SNN-LOAD003", "snncc.cli.__main__.main", allow=allow)
    assert "snncc.cli.__main__" not in sys.modules


def test_disallowed_modules_are_not_even_imported(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing a module runs its top-level code, so a file cannot make snncc import a module
    the user did not allow; one the user allows is imported."""
    marker = tmp_path / "IMPORTED"
    (tmp_path / "sideeffect_mod.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nclass Net:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "sideeffect_mod", raising=False)
    path = zip_with_pickle(tmp_path / "m.pt", b"\x80\x02csideeffect_mod\nNet\n)\x81.")
    refused(path, "SNN-LOAD003", "sideeffect_mod.Net", "--allow sideeffect_mod")
    assert not marker.exists()
    # SpikingJelly's example scripts are not model code and are not imported either
    sj = "spikingjelly.clock_driven.examples.Spiking_DQN_state"
    path = zip_with_pickle(tmp_path / "sj.pt", b"\x80\x02c" + f"{sj}\nDQSN\n".encode() + b")\x81.")
    monkeypatch.delitem(sys.modules, sj, raising=False)
    refused(path, "SNN-LOAD003", f"{sj}.DQSN")
    assert sj not in sys.modules
    # allowed: imported to look at Net, which is a plain class, not a model class: refused
    err = refused(path.with_name("m.pt"), "SNN-LOAD003", "sideeffect_mod.Net",
                  allow=["sideeffect_mod"])
    assert any("only model classes" in n for n in err.diagnostic.notes)
    assert marker.exists()
    sys.modules.pop("sideeffect_mod", None)


def test_user_code_is_found_in_the_current_directory(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The snncc console script does not put the working directory on sys.path; the modules
    a user names with allow/arch are looked for there too, as with `python -m`."""
    (tmp_path / "cwd_models.py").write_text(
        "from torch import nn\n\n\nclass Net(nn.Linear):\n    pass\n\n\n"
        "def make():\n    return Net(2, 2)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import cwd_models  # type: ignore[import-not-found]

    torch.save(cwd_models.make(), tmp_path / "m.pt")
    torch.save(cwd_models.make().state_dict(), tmp_path / "sd.pt")
    monkeypatch.undo()  # off sys.path again, and forgotten
    sys.modules.pop("cwd_models", None)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        assert type(load_model("m.pt", allow=["cwd_models"]).module).__name__ == "Net"
        assert type(load_model("sd.pt", arch="cwd_models:make").module).__name__ == "Net"
        assert str(tmp_path) not in sys.path, "the directory is only on the path while loading"
    finally:
        sys.modules.pop("cwd_models", None)


def test_torchscript_archives_are_refused(tmp_path: Path) -> None:
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), tmp_path / "ts.pt")
    refused(tmp_path / "ts.pt", "SNN-LOAD004", "TorchScript")


def test_legacy_whole_model_is_refused_without_trust(tmp_path: Path) -> None:
    torch.save(nn.Linear(2, 2), tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    refused(tmp_path / "old.pt", "SNN-LOAD002", "pre-1.6")
    assert isinstance(load_model(tmp_path / "old.pt", trust=True).module, nn.Linear)
