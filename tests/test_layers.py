"""The layers of docs/architecture.md §2, checked on the source: a lower layer importing a higher one
(even inside a function) fails here, not in a reviewer's head."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "eucadb"
FORBIDDEN = {
    "cloud": ("eucadb.properties", "eucadb.workflow", "eucadb.bootstrap", "eucadb.services", "eucadb.serve"),
    "pool": ("eucadb.properties", "eucadb.workflow", "eucadb.bootstrap", "eucadb.services", "eucadb.serve",
             "eucadb.cloud"),
    "services": ("eucadb.bootstrap", "eucadb.workflow", "eucadb.serve"),
    "store": ("eucadb.properties", "eucadb.workflow", "eucadb.bootstrap", "eucadb.services", "eucadb.serve",
              "eucadb.cloud", "eucadb.pool"),
}


def imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(layer):
    bad = [f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
           for path in sorted((PACKAGE / layer).rglob("*.py"))
           for line, module in imports(path)
           if any(module == f or module.startswith(f + ".") for f in FORBIDDEN[layer])]
    assert not bad, "\n".join(bad)


def test_the_check_sees_imports_inside_functions(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    from eucadb.bootstrap.loop import Bootstrapper\n")
    assert imports(sample) == [(2, "eucadb.bootstrap.loop")]
