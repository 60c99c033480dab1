"""The layering the tree promises (frontends -> snncc -> backends): nothing under
snncc/passes imports a backend; a pass that needs a backend's result takes it as an
argument (quantize's `simulate`), and the caller, which knows the backend, passes it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "snncc"
PASSES = ROOT / "passes"
TARGET_NEUTRAL = (PASSES, ROOT / "lower")  # the passes and the layer program every backend reads
BACKEND_PACKAGES = ("snncc.backends", "backends")


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


def _is_backend(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in BACKEND_PACKAGES)


def test_no_pass_imports_a_backend() -> None:
    files = sorted(f for d in TARGET_NEUTRAL for f in d.rglob("*.py"))
    assert len({f.parent.parent if f.parent.name == "quantize" else f.parent for f in files}) == 2
    found = [f"{f.relative_to(ROOT)}:{line}: {module}"
             for f in files
             for line, module in _imported_modules(ast.parse(f.read_text(), str(f)))
             if _is_backend(module)]
    assert not found, "passes must not import backends:\n" + "\n".join(found)


def test_the_check_sees_a_lazy_import() -> None:
    tree = ast.parse("def f():\n    from snncc.backends.acsim.simulator import run_quantized\n"
                     "import snncc.backends\nfrom snncc import backends\n")
    assert sorted(m for _, m in _imported_modules(tree) if _is_backend(m)) == [
        "snncc.backends", "snncc.backends", "snncc.backends.acsim.simulator",
        "snncc.backends.acsim.simulator.run_quantized"]
    assert not any(_is_backend(m) for _, m in _imported_modules(ast.parse(
        "import snncc.backendsish\nfrom snncc.passes import backend_free\n")))
