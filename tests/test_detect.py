"""The Haar cascade ships with the pinned OpenCV and finds real faces; frames of any kind are safe."""
import re

import cv2
import numpy as np
import pytest

from conftest import ROOT
from expression import detect
from expression.detect import DetectorError, FaceDetector, cascade_path, to_gray


def test_cascade_file_is_present_and_loads():
    path = cascade_path()
    assert path.is_file() and path.stat().st_size > 100_000
    assert not cv2.CascadeClassifier(str(path)).empty()


def test_requirements_pin_an_opencv_that_ships_the_cascades():
    # opencv-python 5.0 wheels have an empty cv2.data.haarcascades.
    pin = re.search(r"^opencv-python==(\d+)\.", (ROOT / "requirements.txt").read_text(), re.M)
    assert pin and int(pin.group(1)) < 5
    assert int(cv2.__version__.split(".")[0]) < 5


def test_missing_cascade_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(cv2.data, "haarcascades", str(tmp_path))
    with pytest.raises(DetectorError, match="opencv-python<5"):
        FaceDetector()
    (tmp_path / "broken.xml").write_text("<opencv_storage></opencv_storage>")
    with pytest.raises(DetectorError, match="not a valid Haar cascade"):
        FaceDetector(path=tmp_path / "broken.xml")


def test_finds_real_faces_and_maps_boxes_back_to_full_size(detectable_faces):
    face = detectable_faces[0]
    frame = np.full((960, 1280), 110, np.uint8)  # twice the usual size: detection runs at 320 px wide
    frame[320:640, 480:800] = cv2.resize(face, (320, 320), interpolation=cv2.INTER_CUBIC)
    boxes = FaceDetector(detect_width=320).detect(frame)
    assert len(boxes) == 1
    x, y, w, h = boxes[0]
    assert abs((x + w / 2) - 640) < 40 and abs((y + h / 2) - 480) < 40 and 200 < w < 400


def test_search_near_tracked_faces_finds_what_a_full_scan_finds(detectable_faces):
    frame = np.full((480, 640), 110, np.uint8)
    for k, face in enumerate(detectable_faces[:2]):
        frame[140:300, 40 + 320 * k:200 + 320 * k] = cv2.resize(face, (160, 160), interpolation=cv2.INTER_CUBIC)
    detector = FaceDetector()
    full = detector.detect(frame)
    assert len(full) == 2
    # Last frame's boxes, off by a few pixels as a moving face's would be.
    near = detector.detect(frame, near=full + [12, -8, 0, 0])
    assert len(near) == 2
    for box in near:
        assert max(detect.iou(box, other) for other in full) > 0.8
    # Only the regions around the given faces are searched.
    assert len(detector.detect(frame, near=full[:1])) == 1
    assert len(detector.detect(frame, near=np.zeros((0, 4)))) == 0


@pytest.mark.parametrize("frame", [
    np.zeros((0, 0, 3), np.uint8), np.zeros((1, 1), np.uint8), np.zeros((5, 7, 4), np.uint8),
    np.full((40, 40, 3), 65535, np.uint16), np.random.default_rng(0).random((30, 30)),
    np.full((10, 10, 1), np.nan), np.ones((3, 3, 2), bool)])
def test_to_gray_accepts_any_frame(frame):
    gray = to_gray(frame)
    if frame.size == 0:
        assert gray is None
    else:
        assert gray.dtype == np.uint8 and gray.ndim == 2 and gray.shape == frame.shape[:2]
        assert len(FaceDetector().detect(gray)) == 0
