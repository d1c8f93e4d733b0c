"""Find faces with OpenCV's Haar cascade, on a downscaled grayscale copy of the frame."""
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

# "alt2" with 3 neighbours finds as many FER2013 faces as "default" with 5, with no more false boxes,
# and the live pipeline detects in 24-33% less time (bench/realtime_bench.py --sweep, --cascade).
CASCADE = "haarcascade_frontalface_alt2.xml"


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


class FaceDetector:
    """detect(gray[, near[, scan]]) -> int array (N, 4) of x, y, w, h in full-frame pixels."""

    def __init__(self, detect_width=320, scale_factor=1.1, min_neighbors=3, min_face=0.08, cascade=CASCADE):
        path = cascade_path(cascade)
        try:
            self.cascade = cv2.CascadeClassifier(str(path))
        except (cv2.error, SystemError):  # OpenCV raises on malformed XML instead of returning empty
            self.cascade = cv2.CascadeClassifier()
        if self.cascade.empty():
            fix = ("reinstall opencv-python from requirements.txt" if path.parent == shipped_folder()
                   else f"give an OpenCV cascade XML file, or a shipped one such as {CASCADE}")
            raise DetectorError(f"{path}: not a valid Haar cascade; {fix}")
        self.detect_width, self.scale_factor, self.min_neighbors = detect_width, scale_factor, min_neighbors
        self.min_face = min_face  # smallest face, as a share of the frame's shorter side
        self.path, self.local = path, threading.local()
        self.local.cascade = self.cascade

    def detect(self, gray, near=None, scan=None):
        """Faces in `gray`; with `near` (boxes of faces seen lately), search only around those.

        Around a known face only sizes close to it are tried: with two faces in a 640x480
        frame that costs about a quarter of a full scan (bench/realtime_bench.py).
        With `scan` (a SpreadScan), this frame also does its share of a full scan spread over
        frames; the faces a finished scan found are searched for here like the known ones.
        """
        small, scale = self.shrink(gray)
        side = self.smallest(small)
        if near is None:
            boxes = drop_overlaps(self._scan(small, side, max(small.shape[:2])))
        else:
            # Each search, and the scan's share, is a job for a worker thread: OpenCV lets go of
            # Python's lock, so on two cores two faces take little more than one.
            def searches(around):
                return [lambda box=box: self._scan_around(small, box, side) for box in around]

            *found, scanned = run_all(searches(np.asarray(near, float).reshape(-1, 4) * scale)
                                      + [lambda: scan.step(small) if scan else []])
            boxes = sum(found, [])
            # A face the scan found is searched for too, unless it was just found anyway.
            hints = [box for box in scanned if all(iou(box, known) < 0.3 for known in boxes)]
            boxes += sum(run_all(searches(hints)), [])
            boxes = drop_overlaps(boxes)
        if len(boxes) == 0:
            return np.zeros((0, 4), int)
        return np.round(np.asarray(boxes, float) / scale).astype(int)

    def shrink(self, gray):
        """The equalised, downscaled copy detection runs on, and its scale."""
        height, width = gray.shape[:2]
        # Detection cost grows with pixels; faces at webcam distance survive a 2x downscale.
        scale = min(1.0, self.detect_width / width) if self.detect_width else 1.0
        small = cv2.resize(gray, (round(width * scale), round(height * scale)),
                           interpolation=cv2.INTER_AREA) if scale < 1 else gray
        return cv2.equalizeHist(small), scale

    def smallest(self, small):
        """The smallest face searched for, in pixels of `small`."""
        return max(24, int(min(small.shape[:2]) * self.min_face))

    def _scan(self, image, smallest, largest, min_neighbors=None):
        """Raw detectMultiScale boxes, as tuples; a face may come with a second box inside it."""
        # One CascadeClassifier must not run in two threads at once: each thread loads its own.
        if not hasattr(self.local, "cascade"):
            self.local.cascade = cv2.CascadeClassifier(str(self.path))
        found = self.local.cascade.detectMultiScale(
            image, self.scale_factor, self.min_neighbors if min_neighbors is None else min_neighbors,
            minSize=(smallest, smallest), maxSize=(largest, largest))
        return [tuple(box) for box in np.asarray(found).reshape(-1, 4)]

    def _scan_around(self, small, box, smallest, reach=0.35, resize=1.33, widen=True):
        """The same face, moved by up to `reach` of its size and resized by up to `resize` times.

        Where that misses, the search is done once more, twice as far and over the squared size
        range: the cascade frames some faces tightly in one frame and loosely in the next (on
        the bench clip, 120 to 278 px for a 160 px face), and a miss is rare enough to afford it.
        """
        x, y, w, h = box
        size, pad = max(w, h), reach * max(w, h)
        x0, y0 = max(0, int(x - pad)), max(0, int(y - pad))
        x1, y1 = min(small.shape[1], int(x + w + pad)), min(small.shape[0], int(y + h + pad))
        if x1 - x0 < smallest or y1 - y0 < smallest:
            return []
        # Coarser scale steps here would save more, but measured: they lose faces between scans.
        # A face known to be here needs one neighbour less: on the bench clip, with 3 a face was
        # missing in 1 frame of 45, with 2 in 1 of 150.
        hits = self._scan(small[y0:y1, x0:x1], max(smallest, int(size / resize)), int(size * resize) + 1,
                          min_neighbors=self.min_neighbors - 1 if self.min_neighbors > 1 else self.min_neighbors)
        if not hits and widen:
            return self._scan_around(small, box, smallest, 2 * reach, resize ** 2, widen=False)
        return [(hx + x0, hy + y0, hw, hh) for hx, hy, hw, hh in hits]


class SpreadScan:
    """A full scan spread over `frames` frames, so that no frame pays for a whole one.

    Haar's scan is a pyramid of window sizes; each frame scans its share of the sizes
    (balanced by window count) and keeps the raw hits. When every size has been scanned
    they are grouped the way detectMultiScale groups them, which gives exactly the full
    scan's boxes on a still picture (tests/test_detect.py); for a moving face, a box from
    a few frames ago that FaceDetector.detect then looks around.
    """

    def __init__(self, detector, frames):
        self.detector, self.frames = detector, max(1, frames)
        self.plan, self.cost, self.shape, self.turn, self.hits = [], {}, None, 0, []

    def step(self, small):
        """Scan this frame's share of `small` (from FaceDetector.shrink).

        Returns the boxes found, in `small`'s pixels, on the frame that completes the scan, else [].
        """
        if small.shape != self.shape:  # a new frame size: start over
            self.shape = small.shape
            self.plan = self._share_out(small.shape, self.detector.smallest(small))
            self.restart()
        for size in self.plan[self.turn]:
            self.hits += self.detector._scan(small, size, size, min_neighbors=0)
        self.turn = (self.turn + 1) % len(self.plan)
        if self.turn:
            return []
        hits, self.hits = self.hits, []
        return group_hits(hits, self.detector.min_neighbors) if self.detector.min_neighbors > 0 else hits

    def restart(self):
        """Drop the hits so far: a whole scan has just been done, they are out of date."""
        self.turn, self.hits = 0, []

    def _share_out(self, shape, smallest):
        """The pyramid's window sizes, dealt to `frames` turns: largest job to the lightest turn."""
        base = self.detector.cascade.getOriginalWindowSize()[0]
        height, width = shape[:2]
        jobs, factor = [], 1.0
        while round(base * factor) <= max(height, width):  # OpenCV's own loop over scales
            size = round(base * factor)
            scaled_w, scaled_h = width / factor, height / factor
            if size >= smallest and min(scaled_w, scaled_h) >= base:
                step = 1 if factor > 2 else 2  # OpenCV scans big windows on every pixel
                windows = ((scaled_w - base) // step + 1) * ((scaled_h - base) // step + 1)
                jobs.append((windows, size))
            factor *= self.detector.scale_factor
        self.cost = {size: windows for windows, size in jobs}
        turns = [[0, []] for _ in range(self.frames)]
        for windows, size in sorted(jobs, reverse=True):
            lightest = min(turns, key=lambda turn: turn[0])
            lightest[0] += windows
            lightest[1].append(size)
        return [sizes for _, sizes in turns]


_workers = None


def run_all(jobs):
    """Call each job on a pool of worker threads (one per core, at most 4); results in order."""
    global _workers
    if len(jobs) < 2:
        return [job() for job in jobs]
    if _workers is None:
        _workers = ThreadPoolExecutor(min(4, os.cpu_count() or 1), thread_name_prefix="detect")
    return list(_workers.map(lambda job: job(), jobs))


def group_hits(hits, min_neighbors):
    """Raw window hits (from one scan or several) grouped as detectMultiScale groups them, one box a face."""
    grouped, _ = cv2.groupRectangles([list(hit) for hit in hits], min_neighbors, 0.2)
    return drop_overlaps([tuple(box) for box in np.asarray(grouped).reshape(-1, 4)])


def intersection(a, b):
    """Area shared by two x, y, w, h boxes."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    return max(0, x1 - x0) * max(0, y1 - y0)


def iou(a, b):
    """Intersection over union of two x, y, w, h boxes."""
    inter = intersection(a, b)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def drop_overlaps(boxes, threshold=0.5, inside=0.8):
    """One box per face: when two searched regions found the same face, or a cascade fired twice.

    A box mostly inside a larger one is the same face too (a cascade often also fires on the
    inner part of a face, and OpenCV's grouping keeps both at low neighbour counts); their IoU
    can be as low as 0.3, so IoU alone keeps both.
    """
    kept = []
    for box in sorted(boxes, key=lambda b: -b[2] * b[3]):  # the larger of two stays
        if all(iou(box, other) < threshold and intersection(box, other) < inside * box[2] * box[3]
               for other in kept):
            kept.append(box)
    return kept


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
