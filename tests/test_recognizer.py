"""The Python call, EmotionRecognizer().detect_emotions(image): the faces realtime.py finds, as plain dicts."""
import csv
import inspect
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import MODELS, ROOT, run_script

GROUP = ROOT.parent / "shared" / "realmedia" / "group_multiface.jpg"  # a real photo of several people


@pytest.fixture(scope="module")
def recognizer():
    from expression import EmotionRecognizer
    return EmotionRecognizer(MODELS)


@pytest.mark.skipif(not GROUP.is_file(), reason=f"{GROUP} not found")
def test_same_faces_and_emotions_as_realtime_on_a_real_photo(recognizer, tmp_path):
    result = run_script("realtime.py", "--source", GROUP, "--no-display", "--log", tmp_path / "rows.csv",
                        "--model", MODELS)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "rows.csv") as f:
        rows = list(csv.DictReader(f))
    faces = recognizer.detect_emotions(str(GROUP))
    assert len(faces) == len(rows) >= 3
    assert [face["box"] for face in faces] == [[int(row[k]) for k in "xywh"] for row in rows]
    assert [face["emotion"] for face in faces] == [row["emotion"] for row in rows]
    for face, row in zip(faces, rows):
        assert all(abs(p - float(row[label])) < 1e-4 for label, p in face["emotions"].items())
    # Plain Python values (json.dumps-able), the seven emotions, the top one named.
    for face in faces:
        assert set(face) == {"box", "emotions", "emotion"}
        assert all(type(v) is int for v in face["box"]) and all(type(p) is float for p in face["emotions"].values())
        assert list(face["emotions"]) == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
        assert face["emotion"] == max(face["emotions"], key=face["emotions"].get)
        assert abs(sum(face["emotions"].values()) - 1) < 1e-3


@pytest.mark.skipif(not GROUP.is_file(), reason=f"{GROUP} not found")
def test_each_call_is_a_still_and_the_image_is_left_as_it_was(recognizer):
    image = cv2.imread(str(GROUP))
    original = image.copy()
    first = recognizer.detect_emotions(image)
    recognizer.detect_emotions(np.full_like(image, 110))  # a call in between carries nothing over
    assert recognizer.detect_emotions(image) == first == recognizer.detect_emotions(Path(GROUP))
    assert np.array_equal(image, original)  # nothing drawn on the caller's picture


def test_a_path_that_is_not_an_image_is_a_clear_value_error(recognizer, tmp_path):
    (tmp_path / "notes.jpg").write_text("not a picture")
    for path in (tmp_path / "notes.jpg", str(tmp_path / "missing.png")):
        with pytest.raises(ValueError, match="not a readable image.*pass the path of a .jpg or .png"):
            recognizer.detect_emotions(path)
    assert recognizer.detect_emotions(np.full((240, 320, 3), 110, np.uint8)) == []


def test_defaults_are_realtime_defaults():
    import realtime
    from expression.recognizer import MODELS as PACKAGE_MODELS, EmotionRecognizer

    args = realtime.parse_args([])
    defaults = {name: p.default for name, p in inspect.signature(EmotionRecognizer).parameters.items()}
    assert Path(defaults.pop("model")) == PACKAGE_MODELS == Path(args.model) == ROOT / "models"
    assert defaults == {name: getattr(args, name) for name in defaults}


def test_importing_the_package_stays_light():
    code = ("import sys, expression; assert 'keras' not in sys.modules and 'cv2' not in sys.modules; "
            "from expression import EmotionRecognizer; print(EmotionRecognizer.__name__)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "EmotionRecognizer", result.stderr


def test_bad_model_paths_raise_with_the_fix(tmp_path):
    from expression import EmotionRecognizer
    with pytest.raises(ValueError, match="model not found.*folder train.py wrote"):
        EmotionRecognizer(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="folder train.py wrote.*emotion.json"):
        EmotionRecognizer(tmp_path / "model.keras")
