"""Give faces stable IDs across frames and steady labels.

Matching: each frame's boxes go to the tracks whose predicted boxes (last box moved on by the
face's own motion) they overlap most (greedy IoU). A track missed for more than `max_missed`
frames leaves `tracks` (the detector stops searching around it) but is remembered for
`remember` frames: a face found again near where it was heading, at a similar size, takes its
old ID back, so a person hidden behind another for up to a second keeps one ID.

Smoothing is an exponential moving average: p <- smooth * p + (1 - smooth) * new, and the label
shown is always the top one of those smoothed probabilities, so the label and the percentage
beside it never disagree (an earlier version held a label while another emotion led, and showed
"happy 9%" beside an angry 30%). Steadiness comes from the smoothing alone: at 0.9 a clear change
(0.7 to 0.05) shows within 7 frames (a quarter of a second at 30 frames/s), and two emotions of
nearly equal probability take turns only as fast as the average lets them. On the crowd clip
(bench/crowd_bench.py) the label changes 0.88 times a track-second at 0.9 and 1.69 at 0.8
(0.31 with the hysteresis it replaced, which showed stale labels).
With smooth=0 it is off: each frame's own probabilities and their top emotion.
"""
from dataclasses import dataclass, field

import numpy as np

from .boxes import iou


@dataclass
class Track:
    id: int
    box: np.ndarray  # x, y, w, h: where it was seen, or while missed, where it is heading
    probabilities: np.ndarray
    missed: int = 0  # frames since this face was last seen
    age: int = 1  # frames it was seen in
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # its centre's pixels per frame
    seen: np.ndarray = None  # the box it was last seen at

    def __post_init__(self):
        self.box = np.asarray(self.box, float)
        self.seen = self.box if self.seen is None else np.asarray(self.seen, float)

    @property
    def label(self):
        """Index of the emotion shown: always the top one of its (smoothed) probabilities."""
        return int(np.argmax(self.probabilities)) if len(self.probabilities) else 0

    def predicted(self, ahead=1):
        """Where its box will be `ahead` frames from now, at its motion so far."""
        x, y, w, h = self.seen
        dx, dy = self.velocity * (self.missed + ahead)
        return np.array([x + dx, y + dy, w, h])


class FaceTracker:
    def __init__(self, smooth=0.9, min_iou=0.3, max_missed=5, remember=25):
        self.smooth, self.min_iou, self.max_missed, self.remember = smooth, min_iou, max_missed, remember
        self.tracks, self.lost, self.next_id = [], [], 1

    def update(self, boxes, probabilities):
        """Match this frame's faces to tracks; returns the tracks seen in this frame, in box order."""
        boxes = [np.asarray(box, float) for box in boxes]
        track_of_box = self._match(self.tracks, boxes)
        # Boxes no seen track takes may be faces seen before, lost for a while: near where they were heading.
        revived = self._match_lost([b for b in range(len(boxes)) if b not in track_of_box], boxes)
        seen = []
        for b, box in enumerate(boxes):
            if b in track_of_box:
                track = self.tracks[track_of_box[b]]
            elif b in revived:
                track = revived[b]
                self.lost.remove(track)
                self.tracks.append(track)
            else:
                track = Track(self.next_id, box, np.asarray(probabilities[b], np.float32))
                self.next_id += 1
                self.tracks.append(track)
                seen.append(track)
                continue
            self._follow(track, box, probabilities[b])
            seen.append(track)
        for track in self.tracks:
            if not any(track is s for s in seen):
                track.box = track.predicted()  # searched for where it is heading
                track.missed += 1
        for track in self.lost:
            track.missed += 1
        self.lost = [t for t in self.lost + [t for t in self.tracks if t.missed > self.max_missed]
                     if t.missed <= self.remember]
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return seen

    def _match(self, tracks, boxes):
        """Greedy IoU matching of boxes to tracks' predicted boxes: {box index: track index}."""
        pairs = sorted(((iou(track.predicted(), box), t, b) for t, track in enumerate(tracks)
                        for b, box in enumerate(boxes)), key=lambda pair: pair[0], reverse=True)
        track_of_box, used = {}, set()
        for overlap, t, b in pairs:
            if overlap < self.min_iou:
                break
            if t not in used and b not in track_of_box:
                track_of_box[b] = t
                used.add(t)
        return track_of_box

    def _match_lost(self, unmatched, boxes):
        """{box index: lost track}: centre within one face width of where the track was heading, size
        within 1.5 times; nearest first."""
        pairs = []
        for b in unmatched:
            x, y, w, h = boxes[b]
            for track in self.lost:
                px, py, pw, ph = track.predicted()
                distance = np.hypot(x + w / 2 - px - pw / 2, y + h / 2 - py - ph / 2)
                if distance < max(w, pw) and max(w, pw) < 1.5 * min(w, pw):
                    pairs.append((distance / max(w, pw), b, track))
        revived = {}
        for _, b, track in sorted(pairs, key=lambda pair: pair[0]):
            if b not in revived and not any(track is other for other in revived.values()):
                revived[b] = track
        return revived

    def _follow(self, track, box, probabilities):
        """A track seen again: its box, motion, probabilities and shown label."""
        x, y, w, h = track.seen
        motion = (box[:2] + box[2:] / 2 - (x + w / 2, y + h / 2)) / (track.missed + 1)
        motion = np.clip(motion, -0.5 * w, 0.5 * w)  # half a face a frame at most: a jump is not motion
        track.velocity = motion if track.age == 1 else 0.5 * track.velocity + 0.5 * motion
        track.box = track.seen = box
        track.missed, track.age = 0, track.age + 1
        track.probabilities = self.smooth * track.probabilities + (1 - self.smooth) * np.asarray(probabilities)
