"""Give faces stable IDs across frames (greedy IoU matching) and smooth their probabilities.

Smoothing is an exponential moving average: p <- smooth * p + (1 - smooth) * new, so a
label changes only when the new emotion holds for a few frames instead of flickering.
"""
from dataclasses import dataclass

import numpy as np

from .detect import iou


@dataclass
class Track:
    id: int
    box: np.ndarray  # x, y, w, h
    probabilities: np.ndarray
    missed: int = 0  # frames since this face was last seen
    age: int = 1


class FaceTracker:
    def __init__(self, smooth=0.6, min_iou=0.3, max_missed=5):
        self.smooth, self.min_iou, self.max_missed = smooth, min_iou, max_missed
        self.tracks, self.next_id = [], 1

    def update(self, boxes, probabilities):
        """Match this frame's faces to tracks; returns the tracks seen in this frame, in box order."""
        pairs = sorted(((iou(track.box, box), t, b) for t, track in enumerate(self.tracks)
                        for b, box in enumerate(boxes)), reverse=True)
        track_of_box, used = {}, set()
        for overlap, t, b in pairs:
            if overlap < self.min_iou:
                break
            if t not in used and b not in track_of_box:
                track_of_box[b] = t
                used.add(t)
        seen = []
        for b, box in enumerate(boxes):
            if b in track_of_box:
                track = self.tracks[track_of_box[b]]
                track.box, track.missed, track.age = np.asarray(box), 0, track.age + 1
                track.probabilities = self.smooth * track.probabilities + (1 - self.smooth) * probabilities[b]
            else:
                track = Track(self.next_id, np.asarray(box), np.asarray(probabilities[b], np.float32))
                self.next_id += 1
                self.tracks.append(track)
            seen.append(track)
        for t, track in enumerate(self.tracks):
            if t not in used and not any(track is s for s in seen):
                track.missed += 1
        self.tracks = [track for track in self.tracks if track.missed <= self.max_missed]
        return seen
