"""The package builds without setuptools warnings (issue 12, item 11)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parent.parent


def test_license_is_an_spdx_string_and_setuptools_supports_it() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["license"] == "MIT"
    # SPDX strings need setuptools 77; an older build backend would reject the string form
    assert "setuptools>=77" in meta["build-system"]["requires"]


def test_wheel_builds_without_deprecation_warnings(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "lanser", src / "lanser", ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(tmp_path / "dist"),
                           str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = proc.stdout + proc.stderr
    assert "project.license" not in log and "deprecated" not in log.lower(), log[-3000:]
    wheel = next((tmp_path / "dist").glob("lanser-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        metadata = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        assert "License-Expression: MIT" in zf.read(metadata).decode("utf-8")
