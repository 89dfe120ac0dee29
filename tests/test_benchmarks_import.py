"""Every benchmark script still imports: they run by hand, outside the suite, so an import that
a refactor broke (risk_discovery.py once imported an encoder the critic no longer had) would
otherwise surface only when someone measures."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize("path", sorted(BENCHMARKS.glob("*.py")), ids=lambda p: p.name)
def test_the_benchmark_imports(path: Path, monkeypatch):
    if "import locust" in path.read_text() or "from locust" in path.read_text():
        # Locust patches the standard library with gevent on import: in a process of its own.
        done = subprocess.run([sys.executable, "-c", f"import {path.stem}"], cwd=BENCHMARKS,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the scripts import their sibling modules
    name = f"benchmark_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)  # defining, not running: each runs under __main__ only
    assert module.__doc__, f"{path.name} says what it measures"
