"""What a user gets from `pip install`: a wheel in a fresh environment runs the shipped models from any folder."""

import json
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")


def test_a_wheel_in_a_fresh_venv_runs_the_shipped_models_from_another_folder(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path / "dist",
                    ROOT], check=True)
    wheel = next((tmp_path / "dist").glob("ocr_restore-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python = venv / "bin" / "python"
    # the dependencies come from this interpreter's site-packages, put on the path by a plain .pth line: a
    # path so added is searched after the venv's own and its .pth files (this checkout's editable install) never run
    venv_site = Path(subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                             text=True).strip())
    (venv_site / "dependencies.pth").write_text("\n".join([sysconfig.get_path("purelib"), *site.getsitepackages()]) + "\n")
    subprocess.run([python, "-m", "pip", "install", "--no-deps", "-q", wheel], check=True)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(ROOT / "samples" / "receipt.png", elsewhere / "scan.png")
    where = subprocess.check_output([python, "-c", "import ocr_restore; print(ocr_restore.__file__)"], cwd=elsewhere, text=True)
    assert Path(where.strip()).is_relative_to(venv), where
    result = subprocess.run([venv / "bin" / "ocr-restore", "scan.png", "--json"], cwd=elsewhere, capture_output=True,
                            text=True, check=True)
    record = json.loads(result.stdout)
    assert record["stages"]["detector"] == "model" and record["stages"]["inpainter"] == "pconv", result.stderr
    assert "falling back" not in result.stderr
