"""Where frames come from: a webcam index, a video file, an image file or a folder of images.

A live camera is read in its own thread that keeps only the newest frame, so a slow step
drops stale frames instead of lagging behind; files are read in order and never dropped.
"""
import os
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from .data import IMAGE_SUFFIXES, looks_truncated


class SourceError(Exception):
    """A source that cannot be opened or read; str() is the user's message."""


def check_source(spec):
    """'camera', 'video' or 'images': what `spec` names, told from the file system alone.

    Nothing is opened or decoded, so a mistyped path is reported at once, before the model loads.
    """
    spec = str(spec)
    if spec.isdigit():
        return "camera"
    path = Path(spec)
    if path.is_dir():
        if not image_files(path):
            raise SourceError(f"{path}: folder has no images (.jpg/.png); pass a folder of images, a video or a camera index")
        return "images"
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder; pass --source with a camera index, video, image or folder")
    return "images" if path.suffix.lower() in IMAGE_SUFFIXES else "video"


def image_files(folder):
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def open_source(spec, retry_seconds=3.0):
    """Frames from `spec`: '0' (camera index), a video, an image or a folder of images."""
    spec = str(spec)
    kind, path = check_source(spec), Path(spec)
    if kind == "camera":
        return CameraSource(int(spec), retry_seconds)
    if kind == "video":
        return VideoSource(path)
    return ImageSource(image_files(path) if path.is_dir() else [path])


class ImageSource:
    """Each image file is one frame; unreadable files (corrupt, truncated, not images) are skipped and
    counted, and the closing line names them.

    `current` is the file the latest frame came from (each source has one; None for a camera).
    """
    live = False
    stills = True  # unrelated pictures: nothing carries over from one frame to the next
    fps = 1.0  # shown in a window, one picture a second unless --fast

    def __init__(self, paths):
        self.paths, self.skipped, self.current = list(paths), [], None
        self.total = len(self.paths)  # frames to expect, for the progress line
        self.first = read_image(self.paths[0]) if len(self.paths) == 1 else None  # decoded once, used by frames()
        if len(self.paths) == 1 and self.first is None:
            raise SourceError(f"{self.paths[0]}: not a readable image (damaged, truncated or not an image); "
                              "pass a .jpg or .png file")

    def frames(self):
        for path in self.paths:
            frame, self.first = (self.first if self.first is not None else read_image(path)), None
            if frame is None:
                self.skipped.append(path)
                continue
            self.current = path
            yield frame

    def close(self):
        pass


def read_image(path):
    """BGR uint8 image, or None for a file that is unreadable, truncated or damaged.

    np.fromfile + imdecode also copes with non-ASCII paths. libjpeg decodes a damaged JPEG into a
    partly grey picture and only writes "Corrupt JPEG data" to the process's stderr: that text is
    caught here (it would reach the terminal once per read) and the file counts as unreadable.
    """
    try:
        data = np.fromfile(str(path), np.uint8)
    except OSError:
        return None
    if not data.size or looks_truncated(data[:2].tobytes() + data[-32:].tobytes()):
        return None
    with captured_stderr() as said:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return None if said() else image


@contextmanager
def captured_stderr():
    """Catch what C libraries write to file descriptor 2 inside the block; yields a function that
    returns it. Only for brief calls in the main thread: other threads' stderr is caught meanwhile too."""
    caught = []
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield lambda: "".join(caught)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            caught.append(sink.read().decode(errors="replace").strip())


def first_frame(capture, problem):
    """The capture's first frame; with none, release it and raise SourceError(problem)."""
    ok, frame = capture.read() if capture.isOpened() else (False, None)
    if not ok:
        capture.release()
        raise SourceError(problem)
    return frame


def frame_rate(capture, default):
    """The frame rate the capture reports, or `default` where it reports none or nonsense."""
    fps = capture.get(cv2.CAP_PROP_FPS)
    return fps if 1 <= fps <= 240 else default


class VideoSource:
    live = False
    stills = False

    def __init__(self, path):
        self.path = self.current = path
        self.capture = cv2.VideoCapture(str(path))
        self.first = first_frame(self.capture, f"{path}: cannot read this video (unknown format or damaged file); "
                                               "pass an .mp4/.avi video, an image, a folder or a camera index")
        self.fps = frame_rate(self.capture, default=25.0)
        self.total = max(0, int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT)))  # 0: the container does not say

    def frames(self):
        frame = self.first
        while frame is not None:
            yield frame
            ok, frame = self.capture.read()
            if not ok:
                frame = None

    def close(self):
        self.capture.release()


class CameraSource:
    """The newest frame of a webcam, read by a background thread."""
    live = True
    stills = False
    current = None  # no file behind the frames

    def __init__(self, index, retry_seconds=3.0, capture=None):
        self.index, self.retry_seconds = index, retry_seconds
        self.capture = capture if capture is not None else cv2.VideoCapture(index)
        frame = first_frame(self.capture, f"camera {index}: no camera at this index, or it is busy; plug one in, "
                                          "close other apps using it, or pass --source with another index, a video "
                                          "or an image")
        self.fps = frame_rate(self.capture, default=30.0)
        self.failed = False  # set when the camera stopped delivering frames for retry_seconds
        self._latest, self._fresh = frame, threading.Event()
        self._fresh.set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        last_good = time.monotonic()
        while not self._stop.is_set():
            ok, frame = self.capture.read()
            if ok:
                last_good = time.monotonic()
                self._latest = frame
                self._fresh.set()
            elif time.monotonic() - last_good > self.retry_seconds:
                self.failed = True
                self._fresh.set()
                return
            else:
                time.sleep(0.05)  # unplugged or glitching: retry for a few seconds

    def frames(self):
        while True:
            self._fresh.wait()
            self._fresh.clear()
            if self.failed:
                return
            yield self._latest

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self.capture.release()
