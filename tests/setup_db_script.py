"""scripts/setup_db.py imported as a module: it is self-contained (no eucadb package), so tests load
it from its file the way the instance runs it."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "setup_db.py"


def load_setup_db(name: str = "setup_db_under_test") -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
