"""Find faces with OpenCV's Haar cascade, on a grayscale copy shrunk as far as the smallest face allows."""
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

# "alt2" with 3 neighbours finds as many FER2013 faces as "default" with 5, with no more false boxes,
# and the live pipeline detects in 24-33% less time (bench/realtime_bench.py --sweep, --cascade).
CASCADE = "haarcascade_frontalface_alt2.xml"
# The second look at a box (FaceDetector.looks_like_face), with the box zoomed to CHECK_SIDE px.
CHECK_CASCADE, CHECK_SIDE = "haarcascade_frontalface_alt.xml", 48
# The smallest face looked for, in the frame's own pixels: a face about 4 m from a 720p webcam
# 70 degrees wide (its Haar box, ~0.18 m, * 914 px / 4 m), 2 m from a 640x480 one. With alt2's
# 20 px window that is a copy at exactly half size, the fastest and, on the crowd clip, no worse
# (36 px: a 0.56x copy, 17% more detection time, 92.8% of the faces kept against 93.3%, 15 tracks
# for the clip's people against 11; bench/crowd_bench.py).
MIN_FACE = 40
STILL_STEP = 1.05  # scale step for pictures (FaceDetector(stills=True)) and for the second look at a box
STILL_DETAIL, STILL_PIXELS = 2, 1920 * 1080  # pictures: min_face spans 2 windows, in at most 2 MP


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


class FaceDetector:
    """detect(gray[, near[, scan]]) -> int array (N, 4) of x, y, w, h in full-frame pixels.

    min_face: the smallest face looked for, in the frame's own pixels, whatever the frame's size.
    Detection runs on a copy shrunk so that a face of min_face pixels just fills the cascade's
    window (20 px for alt2), never enlarged: 0.5x for 40 px, so a 1080p frame is scanned at
    960x540 and 640x480 at 320x240. detect_width (0: off) caps the copy's width, trading the
    smallest faces for speed. check: a second cascade that a new box must also satisfy at its own
    size (looks_like_face; None: off).

    stills: separate pictures, where time matters less than in a stream. The copy keeps twice
    the detail (a min_face face spans two windows: full size for 40 px), up to STILL_PIXELS,
    and is scanned by OpenCV's own dense scan in scale steps of 1.05 (STILL_STEP). FER2013
    faces of 40-50 px in a 1920x1080 picture: 10-11 of 11 found, against 3-9 at video detail.
    """

    def __init__(self, detect_width=0, scale_factor=1.1, min_neighbors=3, min_face=MIN_FACE, cascade=CASCADE,
                 check=CHECK_CASCADE, check_neighbors=4, stills=False):
        self.cascade, self.path = load_cascade(cascade)
        self.check_cascade, self.check_path = load_cascade(check) if check else (None, None)
        self.detect_width, self.min_neighbors, self.min_face = detect_width, min_neighbors, max(1, min_face)
        self.scale_factor = min(scale_factor, STILL_STEP) if stills else scale_factor
        self.check_neighbors, self.stills = check_neighbors, stills
        self.window = max(self.cascade.getOriginalWindowSize())  # 20 for alt2, 24 for default
        self.local = threading.local()
        self.local.cascade, self.local.check = self.cascade, self.check_cascade
        self.settings = dict(detect_width=detect_width, scale_factor=scale_factor, min_neighbors=min_neighbors,
                             min_face=min_face, cascade=str(self.path), check=check and str(self.check_path),
                             check_neighbors=check_neighbors)

    def for_stills(self):
        """The same detector for separate pictures: scanned whole, in finer scale steps."""
        return FaceDetector(**self.settings, stills=True)

    def detect(self, gray, near=None, scan=None):
        """Faces in `gray`; with `near` (boxes of faces seen lately), search only around those.

        Around a known face only sizes close to it are tried: with two faces in a 640x480
        frame that costs about a quarter of a full scan (bench/realtime_bench.py).
        With `scan` (a SpreadScan), this frame also does its share of a full scan spread over
        frames; the faces a finished scan found are searched for here like the known ones.
        A box that is not around a known face is kept only if it passes looks_like_face.
        """
        small, scale = self.shrink(gray)
        side = self.smallest(small, scale)

        # Each search, and the scan's share, is a job for a worker thread: OpenCV lets go of
        # Python's lock, so on two cores two faces take little more than one.
        def searches(around, widen=True):
            return [lambda box=box: self._scan_around(small, box, side, widen=widen) for box in around]

        if near is None and self.stills:  # OpenCV's own dense scan: a picture is worth the time
            found = drop_overlaps(self._scan(small, side, max(small.shape[:2])))
            return self._to_frame(self._checked(gray, found, scale), scale)
        if near is None:  # a whole scan now: its grouped boxes are this frame's faces
            hits = self.scan_jobs(small, self.jobs(small.shape))
            boxes = self._checked(gray, group_hits(hits, self.min_neighbors) if self.min_neighbors > 0 else [], scale)
            grouped, fresh = [], hits
        else:  # known faces, and a spread scan's grouped boxes from over the last frames, a hint each
            *found, grouped = run_all(searches(np.asarray(near, float).reshape(-1, 4) * scale)
                                      + [lambda: scan.step(small) if scan else []])
            boxes, fresh = drop_overlaps(sum(found, [])), scan.fresh if scan else []
        # Each raw hit of the scan (of this frame's share) is searched around too, unless on a face
        # found anyway: a face that walks in is found on the frame its size is scanned, not up to
        # `rescan` frames later when the scan's hits are grouped (on the crowd clip: 93% of the
        # faces instead of 79%), and a large face that the coarse octaves of the scan hit only
        # once or twice is searched for at full density.
        hints = [box for box in drop_overlaps(list(grouped) + list(fresh))
                 if not any(same_face(box, known) for known in boxes)]
        # A hint is where the scan saw something in this very frame: no need to look twice as far.
        new = [box for box in drop_overlaps(sum(run_all(searches(hints, widen=False)), []))
               if not any(same_face(box, known) for known in boxes)]
        return self._to_frame(drop_overlaps(boxes + self._checked(gray, new, scale)), scale)

    @staticmethod
    def _to_frame(boxes, scale):
        """Boxes in the copy's pixels -> int array (N, 4) in the frame's."""
        if len(boxes) == 0:
            return np.zeros((0, 4), int)
        return np.round(np.asarray(boxes, float) / scale).astype(int)

    def shrink(self, gray):
        """The equalised, downscaled copy detection runs on, and its scale."""
        height, width = gray.shape[:2]
        # Detection cost grows with pixels: shrink until the smallest face fills the cascade's window.
        scale = min(1.0, self.window * (STILL_DETAIL if self.stills else 1) / self.min_face)
        if self.stills:
            scale = min(scale, (STILL_PIXELS / max(1, width * height)) ** 0.5)
        if self.detect_width:
            scale = min(scale, self.detect_width / width)
        if scale < 1:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            # INTER_AREA averages properly but is slow at uneven ratios (11 ms for 1080p at 0.56x,
            # against 3 ms with INTER_LINEAR, which above 0.5x still weighs every pixel in);
            # at exactly 0.5x it is fast.
            small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA if scale <= 0.5 else cv2.INTER_LINEAR)
        else:
            small = gray
        return cv2.equalizeHist(small), scale

    def smallest(self, small=None, scale=None):
        """The smallest face searched for, in pixels of `small`, the copy shrink made at `scale`:
        min_face (a tenth less for pictures, where a face's box may come out a little smaller),
        but never below the cascade's window, where a cap on the copy's size puts it. Without
        `scale`, the window (what it is for streams)."""
        if scale is None:
            return self.window
        return max(self.window, round(self.min_face * scale * (0.9 if self.stills else 1)))

    def jobs(self, shape):
        """A whole scan of a copy of `shape` as jobs (octave, window size, windows it tries).

        OpenCV slides windows of up to twice its base size in steps of 2 pixels, bigger ones in
        steps of 1, which makes faces from 2 to 4 windows cost as much as all smaller ones. So
        each octave scans only windows of 1 to 2 base sizes, and larger faces are looked for
        in a copy halved once more (octave 1, 2, ...), as densely for their size as the smallest:
        a third fewer windows on a 1080p frame (30% on 640x480). The last octave scans all sizes
        that fit.
        """
        base, height, width = self.window, shape[0], shape[1]
        jobs, octave = [], 0
        while min(height, width) >= base:
            last = min(height, width) // 2 < base
            factor = 1.0
            while round(base * factor) <= min(height, width) and (last or factor < 2):  # OpenCV's own ladder
                size = round(base * factor)
                step = 1 if factor > 2 else 2
                windows = ((width / factor - base) // step + 1) * ((height / factor - base) // step + 1)
                jobs.append((octave, size, max(1.0, windows)))
                factor *= self.scale_factor
            octave, height, width = octave + 1, height // 2, width // 2
        return jobs

    def scan_jobs(self, small, jobs):
        """Raw hits (no grouping) of `jobs` from FaceDetector.jobs, in `small`'s pixels."""
        hits, octaves = [], [small]
        for octave, size, _ in jobs:
            while len(octaves) <= octave:
                half = (octaves[-1].shape[1] // 2, octaves[-1].shape[0] // 2)
                octaves.append(cv2.resize(octaves[-1], half, interpolation=cv2.INTER_AREA))
            zoom = small.shape[1] / octaves[octave].shape[1]
            hits += [tuple(int(round(v * zoom)) for v in hit)
                     for hit in self._scan(octaves[octave], size, size, min_neighbors=0)]
        return hits

    def _checked(self, gray, boxes, scale):
        """Those of `boxes` (in pixels of the shrunk copy) that look like a face in the full frame."""
        if self.check_cascade is None:
            return list(boxes)
        return [box for box in boxes if self.looks_like_face(gray, np.asarray(box, float) / scale)]

    def looks_like_face(self, gray, box):
        """A second, stricter look at one box (full-frame pixels): is it a face at this size?

        The check cascade scans the box's surroundings zoomed so that the box is CHECK_SIDE
        (48) px, more detail than the scan had for a small face, at sizes from the box's to
        1.35 times it in steps of 1.05; at least check_neighbors of its raw hits must overlap the
        box (IoU > 0.4). On 95 boxes of an exhaustive alt2 scan of the crowd clip, checked by
        eye, frontalface_alt at 4 hits kept 54 of 64 faces and none of 31 pillars, posters and
        door panels; it passes 97% of the FER2013 faces alt2 finds in a plain frame, and on
        group_multiface.jpg all 6 faces and none of the 3 other boxes of that scan (a necklace,
        a hairline, a collar; at 3 hits the necklace passed). frontalface_default at 24 px,
        tried first: 55 of 64, 0 of 31, but only 65% of the FER2013 faces.
        """
        if self.check_cascade is None:
            return True
        x, y, w, h = (float(v) for v in box)
        pad = 0.3 * max(w, h)
        x0, y0 = max(0, int(x - pad)), max(0, int(y - pad))
        x1, y1 = min(gray.shape[1], int(np.ceil(x + w + pad))), min(gray.shape[0], int(np.ceil(y + h + pad)))
        if x1 - x0 < 2 or y1 - y0 < 2:
            return False
        zoom = CHECK_SIDE / max(w, h, 1.0)
        crop = cv2.resize(gray[y0:y1, x0:x1], None, fx=zoom, fy=zoom,
                          interpolation=cv2.INTER_AREA if zoom < 1 else cv2.INTER_LINEAR)
        smallest = max(CHECK_SIDE, *self.check_cascade.getOriginalWindowSize())
        if min(crop.shape[:2]) < smallest:
            return False
        if not hasattr(self.local, "check"):
            self.local.check = cv2.CascadeClassifier(str(self.check_path))
        hits = self.local.check.detectMultiScale(cv2.equalizeHist(crop), STILL_STEP, 0, minSize=(smallest, smallest),
                                                 maxSize=(round(1.35 * smallest),) * 2)
        target = ((x - x0) * zoom, (y - y0) * zoom, w * zoom, h * zoom)
        return sum(iou(hit, target) > 0.4 for hit in np.asarray(hits).reshape(-1, 4)) >= self.check_neighbors

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

    Haar's scan is a pyramid of window sizes (FaceDetector.jobs: sizes per octave); each frame
    scans its share of them (balanced by window count) and keeps the raw hits. When every job
    has been done they are grouped the way detectMultiScale groups them, which gives exactly the
    whole scan's boxes on a still picture (tests/test_detect.py); for a moving face, a box from
    a few frames ago that FaceDetector.detect then looks around. Each share's own raw hits
    (`fresh`) are looked around at once, so a new face need not wait for the round to end.
    """

    def __init__(self, detector, frames):
        self.detector, self.frames = detector, max(1, frames)
        self.plan, self.cost, self.shape, self.turn, self.hits, self.fresh = [], {}, None, 0, [], []

    def step(self, small):
        """Scan this frame's share of `small` (from FaceDetector.shrink).

        Returns the boxes found, in `small`'s pixels, on the frame that completes the scan, else [].
        `fresh` then holds this share's raw hits, one box where several overlap.
        """
        if small.shape != self.shape:  # a new frame size: start over
            self.shape = small.shape
            self.plan = self._share_out(self.detector.jobs(small.shape))
            self.restart()
        fresh = self.detector.scan_jobs(small, self.plan[self.turn])
        self.hits += fresh
        self.fresh = drop_overlaps(fresh)
        self.turn = (self.turn + 1) % len(self.plan)
        if self.turn:
            return []
        hits, self.hits = self.hits, []
        return group_hits(hits, self.detector.min_neighbors) if self.detector.min_neighbors > 0 else hits

    def restart(self):
        """Drop the hits so far: a whole scan has just been done, they are out of date."""
        self.turn, self.hits, self.fresh = 0, [], []

    def _share_out(self, jobs):
        """The whole scan's jobs (FaceDetector.jobs) dealt to `frames` turns: largest to the lightest turn."""
        self.cost = {(octave, size): windows for octave, size, windows in jobs}
        turns = [[0, []] for _ in range(self.frames)]
        for job in sorted(jobs, key=lambda job: -job[2]):
            lightest = min(turns, key=lambda turn: turn[0])
            lightest[0] += job[2]
            lightest[1].append(job)
        return [sorted(share) for _, share in turns]


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


def same_face(a, b, overlap=0.3, inside=0.5, within=0.2):
    """Two x, y, w, h boxes on one face: they overlap (IoU), or most of the smaller lies in the larger
    and is at least `within` of its area (see drop_overlaps)."""
    smaller, larger = sorted((a[2] * a[3], b[2] * b[3]))
    return iou(a, b) >= overlap or (intersection(a, b) >= inside * smaller and smaller >= within * larger)


def drop_overlaps(boxes, threshold=0.5, inside=0.8, within=0.2):
    """One box per face: when two searched regions found the same face, or a cascade fired twice.

    A box mostly inside a larger one is the same face too (a cascade often also fires on the
    inner part of a face, and OpenCV's grouping keeps both at low neighbour counts); their IoU
    can be as low as 0.3, so IoU alone keeps both. Only a box of at least `within` of the larger
    one's area, though: a false box as big as a crowd (one in the crowd clip's spread scan was
    650 px) must not swallow the faces in it.
    """
    kept = []
    for box in sorted(boxes, key=lambda b: -b[2] * b[3]):  # the larger of two stays
        area = box[2] * box[3]
        if all(iou(box, other) < threshold and (intersection(box, other) < inside * area
                                                or area < within * other[2] * other[3])
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
