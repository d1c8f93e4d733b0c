"""Find faces with OpenCV's Haar cascades, on a grayscale copy shrunk as far as the smallest face allows.

The scanning: which copy, which window sizes, where to look. The cascade files are cascades.py's,
the second look at a box check.py's, and one box per face boxes.py's.
"""
import os
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from .boxes import drop_overlaps, group_hits, merge_views, not_on, of_view
from .cascades import CASCADE, PROFILE, Cascade
from .check import CHECK_CASCADE, FaceCheck
from .spread import SpreadScan
from .tilt import TILTS, tilted_faces

# The smallest face looked for, in the frame's own pixels: a face about 4 m from a 720p webcam
# 70 degrees wide (its Haar box, ~0.18 m, * 914 px / 4 m), 2 m from a 640x480 one. With alt2's
# 20 px window that is a copy at exactly half size, the fastest and, on the crowd clip, no worse
# (36 px: a 0.56x copy, 17% more detection time, 92.8% of the faces kept against 93.3%, 15 tracks
# for the clip's people against 11; bench/crowd_bench.py).
MIN_FACE = 40
# Pictures are looked at more closely: faces down to 30 px, as in group photos of many people.
STILL_MIN_FACE = 30
STILL_STEP = 1.05  # scale step for pictures (FaceDetector(stills=True))
STILL_OCTAVE = 2.5  # a picture's octaves (FaceDetector.jobs) scan windows of 1 to 2.5 base sizes, not 2
# Pictures: min_face spans 2 windows, in at most 2 MP, unless that would make it less than one window.
STILL_DETAIL, STILL_PIXELS = 2, 1920 * 1080
# The profile cascade's second look (check.FaceCheck with the profile cascade itself): hits needed.
PROFILE_NEIGHBORS = 8
# Turned faces are looked for from TURNED_MIN_FACE px, tilted ones (rotated copies) from TILTED_MIN_FACE:
# each extra scan of a picture costs as much as the frontal one at these sizes, not three times as much.
TURNED_MIN_FACE, TILTED_MIN_FACE = 40, 60


class FaceDetector:
    """detect(gray[, near[, scan]]) -> int array (N, 4) of x, y, w, h in full-frame pixels.

    min_face: the smallest face looked for, in the frame's own pixels, whatever the frame's size
    (None: MIN_FACE for streams, STILL_MIN_FACE for pictures).
    Detection runs on a copy shrunk so that a face of min_face pixels just fills the cascade's
    window (20 px for alt2), never enlarged: 0.5x for 40 px, so a 1080p frame is scanned at
    960x540 and 640x480 at 320x240. detect_width (0: off) caps the copy's width, trading the
    smallest faces for speed. check: a second cascade that a new box must also satisfy at its own
    size (check.FaceCheck; None: off). turned (None: for pictures only): also scan with the
    profile cascade, on the copy and on its mirror image, for faces turned to either side; each
    such box must pass the profile cascade's own second look, and a face the frontal cascade
    found keeps the frontal box. tilted (None: for pictures only): detect_tilted also scans
    copies rotated by tilt.TILTS, for faces rolled sideways.

    stills: separate pictures, where time matters less than in a stream. Faces from 30 px
    (STILL_MIN_FACE), the copy at twice the detail (a min_face face spans two windows: full size
    up to 40 px), up to STILL_PIXELS unless a min_face face would then be under one window, scanned
    in scale steps of 1.05 (STILL_STEP) with overlapping octaves (jobs). FER2013 faces of 40-50 px
    in a 1920x1080 picture: 10-11 of 11 found, against 3-9 at video detail; the group photo
    shrunk to faces of 33-46 px: 6 of 6 (tests/test_views.py).
    """

    def __init__(self, detect_width=0, scale_factor=1.1, min_neighbors=3, min_face=None, cascade=CASCADE,
                 check=CHECK_CASCADE, check_neighbors=4, stills=False, turned=None, tilted=None):
        settings = dict(detect_width=detect_width, scale_factor=scale_factor, min_neighbors=min_neighbors,
                        min_face=min_face, cascade=cascade, check=check, check_neighbors=check_neighbors,
                        turned=turned, tilted=tilted)
        turned, tilted = (stills if turned is None else turned), (stills if tilted is None else tilted)
        frontal = Cascade(cascade)
        self.path, self.window = frontal.path, frontal.window  # window: 20 for alt2, 24 for default
        self.check = FaceCheck(check, check_neighbors) if check else None
        # Each view is a cascade and the second look its boxes get: the frontal one first.
        self.views = [(frontal, self.check)]
        if turned:
            for mirrored in (False, True):
                profile = Cascade(PROFILE, mirrored)
                self.views.append((profile, FaceCheck(profile, PROFILE_NEIGHBORS) if check else None))
        self.detect_width, self.min_neighbors = detect_width, min_neighbors
        self.min_face = max(1, min_face or (STILL_MIN_FACE if stills else MIN_FACE))
        # Rotated copies are scanned with the frontal cascade alone: turned and tilted is rare, and triple the time.
        self.upright = FaceDetector(**{**settings, "turned": False, "tilted": False,
                                       "min_face": max(TILTED_MIN_FACE, min_face or 0)}) if tilted else None
        self.scale_factor = min(scale_factor, STILL_STEP) if stills else scale_factor
        self.stills = stills
        self.settings = settings

    def for_stills(self):
        """The same detector for separate pictures: scanned whole, in finer scale steps."""
        return FaceDetector(**self.settings, stills=True)

    def spread(self, frames):
        """A whole scan dealt out over `frames` frames of a stream (spread.SpreadScan), for faces(..., scan=)."""
        return SpreadScan(self, frames)

    def faces(self, frame, gray, near=None, scan=None):
        """(boxes, angles): detect's boxes and, for pictures, the faces of rotated copies (detect_tilted),
        with the angle to turn each crop upright (0 for the upright ones). `frame` is not used: the
        cascades look at `gray` alone (BlazeDetector, the other detector, looks at colour)."""
        boxes = self.detect(gray, near, scan)
        angles = np.zeros(len(boxes))
        if self.stills:
            tilted, tilts = self.detect_tilted(gray, boxes)
            boxes, angles = np.concatenate([boxes, tilted]), np.concatenate([angles, tilts])
        return boxes, angles

    def detect(self, gray, near=None, scan=None):
        """Faces in `gray`; with `near` (boxes of faces seen lately), search only around those.

        Around a known face only sizes close to it are tried: with two faces in a 640x480
        frame that costs about a quarter of a full scan (bench/realtime_bench.py).
        With `scan` (a spread.SpreadScan), this frame also does its share of a full scan spread over
        frames; the faces a finished scan found are searched for here like the known ones.
        A box that is not around a known face is kept only if it passes its view's second look.
        """
        small, scale = self.shrink(gray)
        side = self.smallest(small, scale)

        # Each search, and the scan's share, is a job for a worker thread: OpenCV lets go of
        # Python's lock, so on two cores two faces take little more than one.
        def searches(around, widen=True):
            return [lambda hint=hint: self._scan_around(small, hint, side, widen=widen) for hint in around]

        if near is None:  # a whole scan now: its grouped boxes are this frame's faces
            hits = self.scan_jobs(small, self.jobs(small.shape, side, round(TURNED_MIN_FACE * scale)))
            boxes = merge_views(*[self._checked(gray, view, self.grouped(hits, view), scale)
                                  for view in range(len(self.views))])
            if self.stills:  # a picture is scanned once, in fine steps: nothing to search around
                return self._to_frame(boxes, scale)
            grouped, fresh = [], hits
        else:  # known faces, and a spread scan's grouped boxes from over the last frames, a hint each
            *found, grouped = run_all(searches([(None, box) for box in np.asarray(near, float).reshape(-1, 4) * scale])
                                      + [lambda: scan.step(small) if scan else []])
            boxes, fresh = drop_overlaps([box for _, box in sum(found, [])]), scan.fresh if scan else []
        # Each raw hit of the scan (of this frame's share) is searched around too, unless on a face
        # found anyway: a face that walks in is found on the frame its size is scanned, not up to
        # `rescan` frames later when the scan's hits are grouped (on the crowd clip: 93% of the
        # faces instead of 79%), and a large face that the coarse octaves of the scan hit only
        # once or twice is searched for at full density.
        hints = [(view, box) for view in range(len(self.views))
                 for box in not_on(drop_overlaps(of_view(list(grouped) + list(fresh), view)), boxes)]
        # A hint is where the scan saw something in this very frame: no need to look twice as far.
        new = sum(run_all(searches(hints, widen=False)), [])
        checked = [self._checked(gray, view, not_on(drop_overlaps(of_view(new, view)), boxes), scale)
                   for view in range(len(self.views))]
        return self._to_frame(merge_views(drop_overlaps(boxes), *checked), scale)

    def detect_tilted(self, gray, known=()):
        """(boxes, angles): faces found only in copies of `gray` rotated by tilt.TILTS, not on `known` boxes;
        none unless this detector was made with tilted=True."""
        if self.upright is None:
            return np.zeros((0, 4), int), np.zeros(0)
        return tilted_faces(self.upright.detect, gray, known, TILTS)

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
            scale = min(scale, max((STILL_PIXELS / max(1, width * height)) ** 0.5, self.window / self.min_face))
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

    def jobs(self, shape, smallest=None, turned_smallest=0):
        """A whole scan of a copy of `shape` as jobs (view, octave, window size, windows it tries),
        from faces of `smallest` pixels (default: the cascade's window) up, turned views from the
        larger of that and `turned_smallest`.

        OpenCV slides windows of up to twice its base size in steps of 2 pixels, bigger ones in
        steps of 1, which makes faces from 2 to 4 windows cost as much as all smaller ones. So
        each octave scans only windows of 1 to 2 base sizes, and larger faces are looked for
        in a copy halved once more (octave 1, 2, ...), as densely for their size as the smallest:
        a third fewer windows on a 1080p frame (30% on 640x480). The last octave scans all sizes
        that fit. Each view (frontal, then turned ones) has the same ladder. Pictures are scanned
        this way too, in their finer steps: OpenCV's own dense scan of a 2 MP photo took 2-5 s.
        """
        base, jobs, smallest = self.window, [], smallest or self.window
        top = STILL_OCTAVE if self.stills else 2  # a picture's octaves overlap: a face at their border is not lost
        for view in range(len(self.views)):
            height, width, octave = shape[0], shape[1], 0
            least = max(smallest, turned_smallest) if view else smallest
            first = max(0, int(np.log2(least / base)))  # the octaves below only hold smaller faces
            while min(height, width) >= base:
                last = min(height, width) // 2 < base
                factor = 1.0
                while round(base * factor) <= min(height, width) and (last or factor < top):  # OpenCV's own ladder
                    size = round(base * factor)
                    step = 1 if factor > 2 else 2
                    windows = ((width / factor - base) // step + 1) * ((height / factor - base) // step + 1)
                    if octave >= first and size << octave >= least:
                        jobs.append((view, octave, size, max(1.0, windows)))
                    factor *= self.scale_factor
                octave, height, width = octave + 1, height // 2, width // 2
        return jobs

    def scan_jobs(self, small, jobs):
        """Raw hits (no grouping) of `jobs` from FaceDetector.jobs, as (view, box) in `small`'s pixels."""
        hits, octaves = [], [small]
        for view, octave, size, _ in jobs:
            while len(octaves) <= octave:
                half = (octaves[-1].shape[1] // 2, octaves[-1].shape[0] // 2)
                octaves.append(cv2.resize(octaves[-1], half, interpolation=cv2.INTER_AREA))
            zoom = small.shape[1] / octaves[octave].shape[1]
            cascade = self.views[view][0]
            hits += [(view, tuple(int(round(v * zoom)) for v in hit))
                     for hit in cascade.scan(octaves[octave], self.scale_factor, 0, size, size)]
        return hits

    def grouped(self, hits, view):
        """The raw (view, box) hits of one view grouped into boxes, as detectMultiScale groups them."""
        boxes = of_view(hits, view)
        return group_hits(boxes, self.min_neighbors) if self.min_neighbors > 0 else boxes

    def _checked(self, gray, view, boxes, scale):
        """Those of `boxes` (in pixels of the shrunk copy) that pass `view`'s second look in the full frame."""
        check = self.views[view][1]
        if check is None:
            return list(boxes)
        return [box for box in boxes if check.passes(gray, np.asarray(box, float) / scale)]

    def looks_like_face(self, gray, box):
        """The frontal second look (check.FaceCheck) at one box in full-frame pixels; True without a check."""
        return self.check is None or self.check.passes(gray, box)

    def _scan(self, image, smallest, largest, min_neighbors=None, view=0):
        """Raw detectMultiScale boxes of one view, as tuples; a face may come with a second box inside it."""
        return self.views[view][0].scan(image, self.scale_factor,
                                        self.min_neighbors if min_neighbors is None else min_neighbors,
                                        smallest, largest)

    def _scan_around(self, small, hint, smallest, reach=0.35, resize=1.33, widen=True):
        """The same face, moved by up to `reach` of its size and resized by up to `resize` times:
        [(view, box)]. `hint` is (view, box); view None (a tracked face): the frontal view, then
        each turned one while none finds it.

        Where that misses, the search is done once more, twice as far and over the squared size
        range: the cascade frames some faces tightly in one frame and loosely in the next (on
        the bench clip, 120 to 278 px for a 160 px face), and a miss is rare enough to afford it.
        """
        view, (x, y, w, h) = hint
        size, pad = max(w, h), reach * max(w, h)
        x0, y0 = max(0, int(x - pad)), max(0, int(y - pad))
        x1, y1 = min(small.shape[1], int(x + w + pad)), min(small.shape[0], int(y + h + pad))
        if x1 - x0 < smallest or y1 - y0 < smallest:
            return []
        # Coarser scale steps here would save more, but measured: they lose faces between scans.
        # A face known to be here needs one neighbour less: on the bench clip, with 3 a face was
        # missing in 1 frame of 45, with 2 in 1 of 150.
        neighbors = self.min_neighbors - 1 if self.min_neighbors > 1 else self.min_neighbors
        for tried in (range(len(self.views)) if view is None else [view]):
            hits = self._scan(small[y0:y1, x0:x1], max(smallest, int(size / resize)), int(size * resize) + 1,
                              neighbors, tried)
            if hits:
                return [(tried, (hx + x0, hy + y0, hw, hh)) for hx, hy, hw, hh in hits]
        if widen:
            return self._scan_around(small, hint, smallest, 2 * reach, resize ** 2, widen=False)
        return []


_workers = None


def run_all(jobs):
    """Call each job on a pool of worker threads (one per core, at most 4); results in order."""
    global _workers
    if len(jobs) < 2:
        return [job() for job in jobs]
    if _workers is None:
        _workers = ThreadPoolExecutor(min(4, os.cpu_count() or 1), thread_name_prefix="detect")
    return list(_workers.map(lambda job: job(), jobs))


def is_bgr(frame):
    """Whether `frame` is an 8-bit three-channel (BGR) picture: one that can be drawn on, and that
    BlazeFace takes as it is."""
    return isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3


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
    # Negatives go to 0 before scaling: -1e308 * 255 would overflow to -inf (and warn) on the way to the same 0.
    return np.clip(np.maximum(values, 0.0) * scale, 0, 255).astype(np.uint8)
