"""One frame through the live pipeline: detect -> classify -> track -> draw.

Kept apart from realtime.py so the benchmark and the tests run exactly what the demo runs.
"""
import time

from .classify import MARGIN, EmotionClassifier, crop_faces
from .detect import FaceDetector, is_bgr, to_gray
from .draw import draw_faces
from .track import FaceTracker

STAGES = ("detect", "classify", "track", "draw")


class LivePipeline:
    def __init__(self, model, labels, detector=None, smooth=0.9, margin=MARGIN, bars=False, rescan=15, stills=False):
        self.labels, self.margin, self.bars = labels, margin, bars
        self.detector = detector or FaceDetector()
        # Separate pictures share no faces: nothing is carried over between them (no smoothing, no
        # searching around earlier boxes, no track ids), so each gets a full scan and its own probabilities.
        self.stills = stills
        if stills:
            smooth, rescan = 0, 0
            self.detector = self.detector.for_stills()
        # While faces are tracked, each frame searches around them and does 1/rescan of a full
        # scan, so a new face is found within `rescan` frames and no frame pays for a whole
        # scan (0 or 1: a full scan every frame).
        self.scan = self.detector.spread(rescan) if rescan > 1 else None
        # A ready EmotionClassifier (e.g. from a cached export, startup.py), or a Keras model to wrap.
        self.classifier = model if isinstance(model, EmotionClassifier) else EmotionClassifier(model)
        self.tracker = FaceTracker(smooth=smooth)
        self.scanned = False
        self.milliseconds = {stage: 0.0 for stage in STAGES}  # of the last frame

    def process(self, frame):
        """Annotate `frame` in place (when it is a drawable BGR image); returns this frame's tracks."""
        tracks = self.analyse(frame)
        clock = time.perf_counter()
        if is_bgr(frame):
            draw_faces(frame, tracks, self.labels, self.bars)
        self._lap("draw", clock)
        return tracks

    def analyse(self, frame):
        """This frame's tracks (box, id, probabilities), found without drawing: `frame` is left as it is."""
        clock = time.perf_counter()
        gray = to_gray(frame)
        if gray is None:
            return []
        tracked = [track.box for track in self.tracker.tracks]
        if self.scan and (tracked or self.scanned):
            boxes, angles = self.detector.faces(frame, gray, tracked, self.scan)
        else:  # the first frame: a whole scan, so that faces show at once
            boxes, angles = self.detector.faces(frame, gray)
            self.scanned = self.scan is not None
            if self.scan:
                self.scan.restart()
        clock = self._lap("detect", clock)
        # A face rolled sideways comes with the angle that turns its crop upright.
        probabilities = self.classifier.probabilities(crop_faces(gray, boxes, self.margin, angles))
        clock = self._lap("classify", clock)
        if self.stills:
            self.tracker = FaceTracker(smooth=0)  # each picture numbers its faces from 1
        tracks = self.tracker.update(boxes, probabilities)
        self._lap("track", clock)
        return tracks

    def _lap(self, stage, started):
        now = time.perf_counter()
        self.milliseconds[stage] = (now - started) * 1000
        return now

