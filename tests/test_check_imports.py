"""scripts/check_imports.py finds import circles, function-level imports included."""

from __future__ import annotations

from pathlib import Path

from scripts.check_imports import main


def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_it_finds_a_circle_hidden_in_a_function(tmp_path, capsys):
    write(tmp_path, "annotator/__init__.py", "")
    write(tmp_path, "annotator/services.py", "def go():\n    from annotator.tasks import run\n")
    write(tmp_path, "annotator/tasks.py", "from annotator import services\n")
    assert main([str(tmp_path)]) == 1
    assert "annotator.services -> annotator.tasks -> annotator.services" in capsys.readouterr().out


def test_type_checking_imports_and_one_way_imports_pass(tmp_path):
    write(tmp_path, "annotator/__init__.py", "")
    write(tmp_path, "annotator/a.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                      "    from annotator import b\n")
    write(tmp_path, "annotator/b.py", "from . import a\n")
    assert main([str(tmp_path)]) == 0


def test_the_project_has_no_circles():
    assert main([str(Path(__file__).resolve().parent.parent)]) == 0
