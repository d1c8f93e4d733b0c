"""A whole-frame scan spread over several frames of a stream, so that no frame pays for all of it."""
from .boxes import drop_overlaps, of_view


class SpreadScan:
    """A full scan spread over `frames` frames, so that no frame pays for a whole one.

    Haar's scan is a pyramid of window sizes (FaceDetector.jobs: sizes per octave and view); each frame
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

        Returns the (view, box) pairs found, in `small`'s pixels, on the frame that completes the
        scan, else []. `fresh` then holds this share's raw hits, one box where several of a view overlap.
        """
        if small.shape != self.shape:  # a new frame size: start over
            self.shape = small.shape
            self.plan = self._share_out(self.detector.jobs(small.shape))
            self.restart()
        fresh = self.detector.scan_jobs(small, self.plan[self.turn])
        self.hits += fresh
        views = range(len(self.detector.views))
        self.fresh = [(view, box) for view in views for box in drop_overlaps(of_view(fresh, view))]
        self.turn = (self.turn + 1) % len(self.plan)
        if self.turn:
            return []
        hits, self.hits = self.hits, []
        return [(view, box) for view in views for box in self.detector.grouped(hits, view)]

    def restart(self):
        """Drop the hits so far: a whole scan has just been done, they are out of date."""
        self.turn, self.hits, self.fresh = 0, [], []

    def _share_out(self, jobs):
        """The whole scan's jobs (FaceDetector.jobs) dealt to `frames` turns: largest to the lightest turn."""
        self.cost = {(view, octave, size): windows for view, octave, size, windows in jobs}
        turns = [[0, []] for _ in range(self.frames)]
        for job in sorted(jobs, key=lambda job: -job[3]):
            lightest = min(turns, key=lambda turn: turn[0])
            lightest[0] += job[3]
            lightest[1].append(job)
        return [sorted(share) for _, share in turns]
