"""The Haar cascade ships with the pinned OpenCV and finds real faces; frames of any kind are safe."""
import re

import cv2
import numpy as np
import pytest

from conftest import ROOT
from expression import boxes as geometry, detect
from expression.cascades import CASCADE, DetectorError, cascade_path
from expression.detect import FaceDetector, to_gray
from expression.spread import SpreadScan


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
        FaceDetector(cascade=tmp_path / "broken.xml")


def test_a_cascade_is_found_by_path_or_by_its_shipped_name(tmp_path):
    shipped = cascade_path("haarcascade_frontalface_default.xml")
    assert shipped.parent == cascade_path().parent and shipped.name == "haarcascade_frontalface_default.xml"
    assert cascade_path(str(shipped)) == shipped
    with pytest.raises(DetectorError, match="no such cascade file"):
        FaceDetector(cascade=tmp_path / "missing.xml")
    import realtime  # its --cascade default names the same file
    assert realtime.parse_args([]).cascade == CASCADE


@pytest.mark.parametrize("options", [{}, {"detect_width": 320}])
def test_finds_real_faces_and_maps_boxes_back_to_full_size(detectable_faces, options):
    face = detectable_faces[0]
    frame = np.full((960, 1280), 110, np.uint8)  # detection runs on a copy half this size, or 320 px wide
    frame[320:640, 480:800] = cv2.resize(face, (320, 320), interpolation=cv2.INTER_CUBIC)
    boxes = FaceDetector(**options).detect(frame)
    assert len(boxes) == 1
    x, y, w, h = boxes[0]
    assert abs((x + w / 2) - 640) < 40 and abs((y + h / 2) - 480) < 40 and 200 < w < 400


@pytest.mark.parametrize("height, width", [(480, 640), (720, 1280), (1080, 1920), (2160, 3840), (30, 40)])
def test_the_smallest_face_is_set_in_the_frames_own_pixels(height, width):
    # Issue 15: the copy was 320 px wide whatever the frame, so a 1080p frame lost every face
    # under ~144 px. Now min_face source pixels fill the cascade's window at any frame size.
    gray = np.full((height, width), 110, np.uint8)
    detector = FaceDetector()
    small, scale = detector.shrink(gray)
    assert detector.window == 20 and detect.MIN_FACE == 40
    assert scale == 0.5 and small.shape == (height // 2, width // 2)
    assert detector.smallest(small, scale) / scale == detect.MIN_FACE
    # Never enlarged: a min_face under the window scans the frame as it is.
    assert FaceDetector(min_face=12).shrink(gray)[1] == 1.0
    # detect_width caps the copy (the smallest face found then grows past min_face).
    capped, scale = FaceDetector(detect_width=160).shrink(gray)
    assert capped.shape[1] == min(width // 2, 160) and scale <= 0.5
    # Pictures look for faces from 30 px, with twice the detail (full size), up to 2 MP unless
    # that would put a 30 px face under the window.
    still = FaceDetector().for_stills()
    small, scale = still.shrink(gray)
    assert still.min_face == detect.STILL_MIN_FACE == 30
    assert scale == min(1.0, max((detect.STILL_PIXELS / (height * width)) ** 0.5, 20 / 30))
    assert still.scale_factor == detect.STILL_STEP and still.smallest(small, scale) == max(20, round(27 * scale))


def small_faces_picture(faces, sizes=(40, 44, 48, 50)):
    """A 1920x1080 picture with each face at each size (in pixels of the picture); and their boxes."""
    frame, truth = np.full((1080, 1920), 110, np.uint8), []
    for k, (face, size) in enumerate((face, size) for size in sizes for face in faces):
        y, x = 100 + 240 * (k // 6), 100 + 300 * (k % 6)
        frame[y:y + size, x:x + size] = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)
        truth.append((x, y, size, size))
    return frame, truth


def test_small_faces_in_a_large_picture_are_found(detectable_faces):
    # Real FER2013 faces 40-50 px wide in a 1920x1080 picture (a group photo's faces at that size).
    faces = detectable_faces[:3]
    frame, truth = small_faces_picture(faces)
    boxes = FaceDetector().for_stills().detect(frame)
    found = [any(geometry.iou(box, face) > 0.3 for box in boxes) for face in truth]
    assert sum(found) >= 0.75 * len(truth), found
    assert all(any(geometry.iou(box, face) > 0.3 for face in truth) for box in boxes)  # no box elsewhere
    # The old way, a copy 320 px wide, found none of them.
    assert len(FaceDetector(detect_width=320).detect(frame)) == 0


def two_face_frame(faces):
    frame = np.full((480, 640), 110, np.uint8)
    for k, face in enumerate(faces[:2]):
        frame[140:300, 40 + 320 * k:200 + 320 * k] = cv2.resize(face, (160, 160), interpolation=cv2.INTER_CUBIC)
    return frame


def test_search_near_tracked_faces_finds_what_a_full_scan_finds(detectable_faces):
    frame = two_face_frame(detectable_faces)
    detector = FaceDetector()
    full = detector.detect(frame)
    assert len(full) == 2
    # Last frame's boxes, off by a few pixels as a moving face's would be.
    near = detector.detect(frame, near=full + [12, -8, 0, 0])
    assert len(near) == 2
    for box in near:
        assert max(geometry.iou(box, other) for other in full) > 0.8
    # Only the regions around the given faces are searched.
    assert len(detector.detect(frame, near=full[:1])) == 1
    assert len(detector.detect(frame, near=np.zeros((0, 4)))) == 0
    # The search around a known face asks for one neighbour less; it still finds no face in noise.
    noise = np.random.default_rng(0).integers(0, 256, frame.shape, np.uint8)
    assert len(detector.detect(noise, near=full)) == 0


@pytest.mark.parametrize("grown", [0.55, 1.7])
def test_a_face_whose_box_jumped_in_size_is_found_again(detectable_faces, grown):
    # The cascade frames some faces tightly in one frame and loosely in the next; the search
    # around the last box then widens once instead of losing the face.
    frame = two_face_frame(detectable_faces)
    detector = FaceDetector()
    full = detector.detect(frame)
    x, y, w, h = full[0]
    side = w * grown
    last = np.array([[x + w / 2 - side / 2, y + h / 2 - side / 2, side, side]])
    found = detector.detect(frame, near=last)
    assert len(found) == 1  # framed tightly or loosely, but centred on the same face
    assert np.abs((found[0, :2] + found[0, 2:] / 2) - (full[0, :2] + full[0, 2:] / 2)).max() < w / 4


def test_a_box_inside_a_larger_one_is_the_same_face():
    # A cascade also fires on the inner part of a face: IoU 0.31 here, so IoU alone keeps both.
    outer, inner, other = (300, 100, 224, 224), (350, 146, 124, 124), (20, 140, 160, 160)
    assert geometry.iou(outer, inner) < 0.5
    assert geometry.drop_overlaps([inner, other, outer]) == [outer, other]
    # Boxes that only touch stay apart.
    assert len(geometry.drop_overlaps([(0, 0, 100, 100), (70, 0, 100, 100)])) == 2


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


@pytest.mark.parametrize("frames", [1, 2, 5, 15, 40])
def test_a_scan_spread_over_frames_finds_exactly_what_the_full_scan_finds(detectable_faces, frames):
    gray = two_face_frame(detectable_faces)
    detector = FaceDetector()
    small, scale = detector.shrink(gray)
    scan = SpreadScan(detector, frames)
    found = [scan.step(small) for _ in range(frames)]
    assert all(boxes == [] for boxes in found[:-1])  # nothing before the last share
    full = detector.detect(gray)
    assert len(full) == 2
    spread = np.round(np.asarray([box for _, box in found[-1]], float) / scale).astype(int)
    assert sorted(map(tuple, spread)) == sorted(map(tuple, full))
    # Every window size of every octave is scanned once per round, none twice.
    jobs = sum(scan.plan, [])
    assert sorted(jobs) == sorted(detector.jobs(small.shape)) and len(set(jobs)) == len(jobs)
    assert min(size for _, _, size, _ in jobs) == detector.smallest(small, scale) == detector.window
    assert scan.step(small) == [] or frames == 1  # the next round starts afresh


def test_the_spread_scan_shares_the_work_out_evenly(detectable_faces):
    detector = FaceDetector()
    small, _ = detector.shrink(two_face_frame(detectable_faces))
    whole = SpreadScan(detector, 1)
    whole.step(small)
    spread = SpreadScan(detector, 15)
    spread.step(small)
    costs = [sum(whole.cost[view, octave, size] for view, octave, size, _ in share) for share in spread.plan]
    # No share is bigger than the biggest single window size, or than twice the average share.
    assert max(costs) <= max(max(whole.cost.values()), 2 * sum(costs) / len(costs))
    assert sum(costs) == sum(whole.cost.values())


def test_restarting_the_spread_scan_forgets_the_frames_before(detectable_faces):
    detector = FaceDetector()
    faces, _ = detector.shrink(two_face_frame(detectable_faces))
    blank, _ = detector.shrink(np.full((480, 640), 110, np.uint8))
    kept, restarted = SpreadScan(detector, 4), SpreadScan(detector, 4)
    for scan in (kept, restarted):
        scan.step(faces), scan.step(faces), scan.step(faces)  # 3 of 4 shares see the faces
    restarted.restart()
    assert len(kept.step(faces)) == 2  # the round completes with the hits so far
    assert [restarted.step(blank) for _ in range(4)] == [[], [], [], []]  # those were dropped


def test_searches_in_worker_threads_give_the_same_faces_every_time(detectable_faces):
    # OpenCV's CascadeClassifier is not safe to share between threads; each worker loads its own.
    frame = np.full((480, 960), 110, np.uint8)
    for k, face in enumerate((detectable_faces * 3)[:6]):
        y, x = 40 + 220 * (k // 3), 40 + 310 * (k % 3)
        frame[y:y + 160, x:x + 160] = cv2.resize(face, (160, 160), interpolation=cv2.INTER_CUBIC)
    detector = FaceDetector(detect_width=480)  # the faces' scale of a 640x480 frame at 320 px
    full = detector.detect(frame)
    assert len(full) == 6
    one_by_one = np.concatenate([detector.detect(frame, near=[box]) for box in full])
    for _ in range(20):
        together = detector.detect(frame, near=full)
        assert sorted(map(tuple, together)) == sorted(map(tuple, one_by_one))


def test_a_huge_false_box_does_not_swallow_the_faces_in_it():
    # The crowd clip's spread scan once grouped a few raw hits into a 650 px box over three faces:
    # "mostly inside a larger box" means the same face only for boxes of comparable size.
    faces, huge = [(120, 150, 80, 80), (400, 180, 70, 70)], (0, 0, 640, 480)
    assert geometry.drop_overlaps([huge, *faces]) == [huge, *faces]
    assert not geometry.same_face(huge, faces[0]) and geometry.same_face((130, 160, 60, 60), faces[0])


def test_the_second_look_keeps_faces_and_drops_what_is_not_a_face(detectable_faces):
    detector = FaceDetector()
    rng = np.random.default_rng(1)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (480, 640), np.uint8), (0, 0), 2)
    frame[:, 400:] = np.where((np.arange(240) // 12) % 2, 200, 60).astype(np.uint8)  # stripes, like pillars
    for k, face in enumerate(detectable_faces[:3]):
        size = (48, 96, 160)[k]
        frame[20:20 + size, 20 + 130 * k:20 + 130 * k + size] = cv2.resize(face, (size, size))
    found = detector.detect(frame)
    assert len(found) >= 2 and all(detector.looks_like_face(frame, box) for box in found)
    for box in [(450, 100, 60, 60), (500, 300, 120, 120), (100, 300, 80, 80)]:  # stripes, stripes, noise
        assert not detector.looks_like_face(frame, box)
    assert FaceDetector(check=None).looks_like_face(frame, (450, 100, 60, 60))  # check=None: no second look


def test_a_face_walking_in_is_found_on_the_frame_its_size_is_scanned(detectable_faces):
    # Each raw hit of a spread scan's share is searched around at once: a new face does not wait
    # for the round to end.
    detector = FaceDetector()
    with_both = two_face_frame(detectable_faces)
    first_only = with_both.copy()
    first_only[:, 320:] = 110
    (first,) = detector.detect(first_only)
    scan = SpreadScan(detector, 15)
    for turn in range(15):
        boxes = detector.detect(with_both, near=[first], scan=scan)
        if len(boxes) == 2:
            break
    assert len(boxes) == 2 and turn < 14, turn  # before the round's last share
