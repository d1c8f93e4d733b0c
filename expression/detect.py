"""Find faces with OpenCV's Haar cascade, on a downscaled grayscale copy of the frame."""
from pathlib import Path

import cv2
import numpy as np

CASCADE = "haarcascade_frontalface_default.xml"


class DetectorError(Exception):
    """The cascade file is missing or unreadable; str() is the user's message."""


def cascade_path():
    """The frontal-face cascade shipped with opencv-python (4.x wheels have it; 5.0 wheels do not)."""
    folder = getattr(getattr(cv2, "data", None), "haarcascades", "") or ""
    path = Path(folder) / CASCADE
    if not path.is_file():
        raise DetectorError(f"OpenCV {cv2.__version__} ships no {CASCADE} (cv2.data.haarcascades is empty); "
                            "install the pinned version: pip install -r requirements.txt (opencv-python<5)")
    return path


class FaceDetector:
    """detect(gray) -> int array (N, 4) of x, y, w, h in full-frame pixels."""

    def __init__(self, detect_width=320, scale_factor=1.1, min_neighbors=5, min_face=0.08, path=None):
        path = Path(path) if path else cascade_path()
        try:
            self.cascade = cv2.CascadeClassifier(str(path))
        except (cv2.error, SystemError):  # OpenCV raises on malformed XML instead of returning empty
            self.cascade = cv2.CascadeClassifier()
        if self.cascade.empty():
            raise DetectorError(f"{path}: not a valid Haar cascade; reinstall opencv-python from requirements.txt")
        self.detect_width, self.scale_factor, self.min_neighbors = detect_width, scale_factor, min_neighbors
        self.min_face = min_face  # smallest face, as a share of the frame's shorter side

    def detect(self, gray):
        height, width = gray.shape[:2]
        # Detection cost grows with pixels; faces at webcam distance survive a 2x downscale.
        scale = min(1.0, self.detect_width / width) if self.detect_width else 1.0
        small = cv2.resize(gray, (round(width * scale), round(height * scale)),
                           interpolation=cv2.INTER_AREA) if scale < 1 else gray
        small = cv2.equalizeHist(small)
        side = max(24, int(min(small.shape[:2]) * self.min_face))
        boxes = self.cascade.detectMultiScale(small, self.scale_factor, self.min_neighbors, minSize=(side, side))
        if len(boxes) == 0:
            return np.zeros((0, 4), int)
        return np.round(np.asarray(boxes, float) / scale).astype(int)


def to_gray(frame):
    """Any frame (gray, BGR, BGRA, 16-bit, float) -> 2-D uint8 grayscale, or None if it is empty."""
    frame = np.asarray(frame)
    if frame.size == 0 or frame.ndim not in (2, 3):
        return None
    if frame.dtype != np.uint8:
        frame = _to_uint8(frame)
    if frame.ndim == 3:
        if frame.shape[2] >= 3:
            frame = cv2.cvtColor(np.ascontiguousarray(frame[:, :, :3]), cv2.COLOR_BGR2GRAY)
        else:
            frame = frame[:, :, 0]
    return np.ascontiguousarray(frame)


def _to_uint8(frame):
    values = np.nan_to_num(frame.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(values.max())
    if np.issubdtype(frame.dtype, np.floating) and top <= 1.0:
        scale = 255.0  # float images in 0..1
    elif top > 255:
        scale = 255.0 / top  # 16-bit and the like
    else:
        scale = 1.0
    return np.clip(values * scale, 0, 255).astype(np.uint8)
