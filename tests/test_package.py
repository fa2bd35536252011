"""The package installs: the wheel holds every module of the tree and declares requirements.txt as its
dependencies, and the installed `brainscan` command runs outside the checkout, finding the model by
BRAINSCAN_MODEL or saying how to name one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow  # builds a wheel and a virtual environment (about 20 s)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # setuptools writes build/ and *.egg-info beside the sources and reuses a stale build/lib: build a clean copy
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "requirements.txt"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "brainscan", src / "brainscan", ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheels = list(out.glob("brainscan-*.whl"))
    assert len(wheels) == 1
    return wheels[0]


def test_wheel_holds_every_module_and_the_requirements(wheel):
    tree = {p.relative_to(ROOT).as_posix() for p in (ROOT / "brainscan").rglob("*.py")}
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = Parser().parsestr(z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode())
        scripts = z.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert {n for n in names if n.endswith(".py")} == tree
    required = sorted(meta.get_all("Requires-Dist") or [])
    listed = sorted(ln.split("#")[0].strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()
                    if ln.split("#")[0].strip())
    assert required == listed and "streamlit==1.67.0" in required
    assert "brainscan = brainscan.cli:main" in scripts


def test_installed_command_runs_outside_the_checkout(wheel, tmp_path):
    venv = tmp_path / "venv"
    # The dependencies are this interpreter's (no network); the package itself only from the wheel.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, timeout=300)
    work = tmp_path / "elsewhere"
    work.mkdir()
    sample = next(p for p in sorted((ROOT / "sample_images").iterdir()) if p.suffix == ".png")
    (work / "s.png").write_bytes(sample.read_bytes())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BRAINSCAN_MODEL", "BRAINSCAN_MODELS_DIR")}
    where = subprocess.run([str(py), "-c", "import brainscan; print(brainscan.__file__)"], capture_output=True,
                           text=True, cwd=work, env=env, timeout=60)
    assert str(venv) in where.stdout, where.stdout + where.stderr  # the installed copy, not the checkout
    usage = subprocess.run([str(venv / "bin" / "brainscan"), "--help"], capture_output=True, text=True, cwd=work,
                           env=env, timeout=120)
    assert usage.returncode == 0 and "predict" in usage.stdout
    none = subprocess.run([str(py), "-m", "brainscan", "predict", "s.png"], capture_output=True, text=True,
                          cwd=work, env=env, timeout=300)
    assert none.returncode == 2 and "BRAINSCAN_MODEL" in none.stderr and "Traceback" not in none.stderr
    env["BRAINSCAN_MODEL"] = str(ROOT / "models" / "default")
    ok = subprocess.run([str(venv / "bin" / "brainscan"), "predict", "s.png"], capture_output=True, text=True,
                        cwd=work, env=env, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert '"label"' in ok.stdout and '"top_class"' in ok.stdout
