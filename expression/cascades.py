"""OpenCV's Haar cascade files: found by name or path, loaded once per thread, run on a picture or its mirror."""
import threading
from pathlib import Path

import cv2
import numpy as np

# "alt2" with 3 neighbours finds as many FER2013 faces as "default" with 5, with no more false boxes,
# and the live pipeline detects in 24-33% less time (bench/realtime_bench.py --sweep, --cascade).
CASCADE = "haarcascade_frontalface_alt2.xml"
# Faces turned to one side; the mirrored picture gives faces turned to the other (detect.py).
PROFILE = "haarcascade_profileface.xml"


class DetectorError(Exception):
    """The cascade file is missing or unreadable; str() is the user's message."""


def cascade_path(cascade=CASCADE):
    """A cascade file, given by path or by the name of one shipped with opencv-python.

    4.x wheels ship them in cv2.data.haarcascades; 5.0 wheels ship none.
    """
    if Path(cascade).is_file():
        return Path(cascade)
    folder = shipped_folder()
    if (folder / Path(cascade).name).is_file():
        return folder / Path(cascade).name
    if not (folder / CASCADE).is_file():
        raise DetectorError(f"OpenCV {cv2.__version__} ships no {Path(cascade).name} (cv2.data.haarcascades is "
                            "empty); install the pinned version: pip install -r requirements.txt (opencv-python<5)")
    raise DetectorError(f"{cascade}: no such cascade file, nor one of that name shipped with OpenCV "
                        f"(give a path, or a name such as {CASCADE})")


def shipped_folder():
    """Where opencv-python keeps its cascade files."""
    return Path(getattr(getattr(cv2, "data", None), "haarcascades", "") or ".")


def load_cascade(cascade):
    """A CascadeClassifier and its path; DetectorError when the file is missing or not a cascade."""
    path = cascade_path(cascade)
    try:
        loaded = cv2.CascadeClassifier(str(path))
    except (cv2.error, SystemError):  # OpenCV raises on malformed XML instead of returning empty
        loaded = cv2.CascadeClassifier()
    if loaded.empty():
        fix = ("reinstall opencv-python from requirements.txt" if path.parent == shipped_folder()
               else f"give an OpenCV cascade XML file, or a shipped one such as {CASCADE}")
        raise DetectorError(f"{path}: not a valid Haar cascade; {fix}")
    return loaded, path


class Cascade:
    """One cascade file, safe to run from several threads, on a picture or on its mirror image.

    One CascadeClassifier must not run in two threads at once, so each thread loads its own.
    `mirrored`: scan the left-right mirror of each picture and map the boxes back, which turns
    the profile cascade (faces turned to one side) into one for faces turned to the other.
    """

    def __init__(self, cascade, mirrored=False):
        loaded, self.path = load_cascade(cascade)
        self.mirrored = mirrored
        self.window = max(loaded.getOriginalWindowSize())  # 20 for alt2 and profileface, 24 for default
        self.local = threading.local()
        self.local.cascade = loaded

    def scan(self, image, scale_factor, min_neighbors, smallest, largest):
        """detectMultiScale's boxes in `image` as (x, y, w, h) tuples, sizes from `smallest` to `largest`."""
        if not hasattr(self.local, "cascade"):
            self.local.cascade = cv2.CascadeClassifier(str(self.path))
        if self.mirrored:
            image = cv2.flip(image, 1)
        found = self.local.cascade.detectMultiScale(image, scale_factor, min_neighbors, minSize=(smallest, smallest),
                                                    maxSize=(largest, largest))
        found = np.asarray(found).reshape(-1, 4)
        if self.mirrored:
            found[:, 0] = image.shape[1] - found[:, 0] - found[:, 2]
        return [tuple(int(v) for v in box) for box in found]
