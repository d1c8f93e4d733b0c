"""Find faces with BlazeFace (blazeface.py): tiles of the frame for new faces, a look around each known one.

The default detector where its package is installed; detect.py's Haar cascades are the other
(realtime.py --detector haar). BlazeFace also finds
faces turned to the side or rolled, which the frontal cascade cannot see, and gives each face's eyes,
so a rolled face is cropped upright without scanning rotated copies (tilt.py).
"""
import copy

import cv2
import numpy as np

from .blazeface import BlazeFace, FaceMesh, merge, roll
from .boxes import iou, not_on, same_face
from .detect import MIN_FACE, STILL_MIN_FACE, FaceDetector, is_bgr, run_all

# The full-range net sees a square tile resized to its 192 px: a tile TILE_FACES smallest faces wide
# shows a min_face face at 16 px, about the least it finds well (crowd clip, faces checked by eye,
# score > 0.5: tiles of 384 px 56 of 61, 480 px 56, 576 px 55 with more false boxes).
TILE_FACES = 12
THRESHOLD = 0.5  # BlazeFace's score for a face: MediaPipe's own default
PRESENCE = 0.5  # FaceMesh's score a new box needs (blazeface.FaceMesh): MediaPipe's own default
# A known face is looked for again in a square REACH times its size about where it is heading, and
# needs a score of FOLLOW there (a lower bar, as the cascades take one neighbour less for a known
# face). Crowd clip, faces checked by eye: reach 3 and 0.5, 49 of 61; 2 and 0.5, 52; 2 and 0.3, 54.
FOLLOW, REACH = 0.3, 2.0
# A square of at least the short-range net's 128 px (a face of 64 px or more) is looked at by that
# net first, four times cheaper than the full-range one (MediaPipe made it for faces that fill much
# of the picture, as a face does in such a square; with two to nine faces a call the mosaic shrinks
# each to a 64 or 42 px cell), at its own 0.5; the faces it does not find get the full-range look
# as above. Crowd clip: 56 of 61 against 54, no false box; 640x480 clip: one
# full-range call in five frames instead of one a frame.
NEAR_SQUARE = 128
TILT = 15  # degrees: a face rolled further is cropped upright (the frontal cascade finds up to about 15)


class BlazeDetector:
    """faces(frame, gray[, near[, scan]]) -> (boxes (N, 4) int x, y, w, h, angles (N,) degrees).

    min_face: the smallest face looked for, in the frame's pixels (None: MIN_FACE for streams,
    STILL_MIN_FACE for pictures, for_stills). A whole scan runs the full-range net on overlapping
    tiles (tiles()) and the short-range net on the whole frame (large, near faces); with `near`
    (boxes of faces seen lately) each is looked for again around where it is heading, nine to a
    full-range call, and `scan` (spread(frames)) adds its share of the whole scan. A box not on a known face
    must pass FaceMesh's second look. In pictures (for_stills) the frontal cascade adds the faces
    BlazeFace missed. Angles: how far to turn each face's crop upright (0 for faces rolled less
    than TILT).
    """

    def __init__(self, min_face=None, threshold=THRESHOLD, presence=PRESENCE, folder=None):
        self.min_face = max(1, min_face or MIN_FACE)
        self.threshold, self.presence = threshold, presence
        self.full, self.short, self.mesh = BlazeFace("full", folder), BlazeFace("short", folder), FaceMesh(folder)
        self.explicit_min_face = min_face
        self.cascade = None  # pictures: the frontal cascade beside it (for_stills)

    def for_stills(self):
        """The same detector for separate pictures (faces from STILL_MIN_FACE; the nets are shared), with
        the frontal cascade's picture scan beside it for the faces BlazeFace misses: gray, tightly
        cropped faces like FER2013's, far from the colour photos it learnt on (of the README
        collage's 12 it finds 6, the frontal cascade 11, together all 12). Those boxes get
        FaceMesh's second look too (it passes those FER2013 faces at 0.999-1.0 and a cascade's box
        on blurred noise at 0.0). On the crowd clip's checked frames as pictures: 51 of 61 faces
        together, 49 BlazeFace alone, 40 the cascade alone, no false box (crowd_bench.py --ceiling)."""
        still = copy.copy(self)
        still.min_face = max(1, self.explicit_min_face or STILL_MIN_FACE)
        still.cascade = FaceDetector(min_face=self.explicit_min_face, turned=False, tilted=False).for_stills()
        return still

    def spread(self, frames):
        return TileScan(self, frames)

    def tiles(self, shape):
        """The whole scan's squares (x0, y0, side): overlapping by half, TILE_FACES * min_face wide,
        then twice that, and so on up to one square holding the whole frame."""
        height, width = shape[:2]
        side, tiles = TILE_FACES * self.min_face, []
        while side < max(height, width):
            step = side // 2
            xs = sorted(set(range(0, max(1, width - side + 1), step)) | {max(0, width - side)})
            ys = sorted(set(range(0, max(1, height - side + 1), step)) | {max(0, height - side)})
            tiles += [(x, y, side) for y in ys for x in xs]
            side *= 2
        return tiles + [(0, 0, max(height, width))]

    def look(self, image, tiles, near=()):
        """Raw (score, box, eyes) of the full-range net on `tiles` (a tile of the frame's side: the short-range
        net on the whole frame too), and the faces seen at `near` boxes looked for again (_follow: a list
        with None where one is not found). A tile's box cut by its inner edge is dropped: the tiles
        overlap by half, so a face that size is whole in the next one."""
        height, width = image.shape[:2]
        # A net's call uses one core, and OpenCV lets go of Python's lock: each call is a job for a worker thread.
        jobs = [lambda tile=tile: self.full.find(image, [tile], self.threshold)[0] for tile in tiles]
        jobs += [lambda: self.short.find(image, [(0, 0, max(height, width))], self.threshold)[0]
                 for tile in tiles if tile[2] >= max(height, width)]
        if len(near):
            jobs.append(lambda: self._follow(image, near))
        results = run_all(jobs)
        followed = results.pop() if len(near) else []
        found = sum(results[len(tiles):], [])
        for (x0, y0, side), faces in zip(tiles, results):
            slack = 0.02 * side
            for score, (x, y, w, h), eyes in faces:
                if ((x0 > 0 and x < x0 - slack) or (y0 > 0 and y < y0 - slack)
                        or (x0 + side < width and x + w > x0 + side + slack)
                        or (y0 + side < height and y + h > y0 + side + slack)):
                    continue
                found.append((score, (x, y, w, h), eyes))
        return found, followed

    def faces(self, frame, gray, near=None, scan=None):
        image = as_color(frame, gray)
        near = np.zeros((0, 4)) if near is None else np.asarray(near, float).reshape(-1, 4)
        # A whole scan (no scan to spread: the first frame, a picture), or this frame's share of it.
        found, followed = self.look(image, scan.share(image.shape) if scan else self.tiles(image.shape), near)
        known = merge([face for face in followed if face is not None])
        least = 0.9 * self.min_face  # a box may come out a little smaller than the face it is on
        faces = list(known)
        for face in merge(found):  # best first; one box a face, also where two nets framed it differently
            if (max(face[1][2:]) >= least and not any(same_face(face[1], other[1]) for other in faces)
                    and self.mesh.presence(image, face[1], roll(face[2])) > self.presence):
                faces.append(face)
        boxes = np.round(np.array([face[1] for face in faces], float).reshape(-1, 4)).astype(int)
        angles = np.array([roll(face[2]) for face in faces], float)
        angles = np.where(np.abs(angles) >= TILT, angles, 0.0)
        if self.cascade is not None:  # a picture: the frontal cascade's faces that BlazeFace did not find
            gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if gray is None else gray
            missed = not_on([tuple(box) for box in self.cascade.detect(gray)], [tuple(box) for box in boxes])
            more = [box for box in missed if self.mesh.presence(image, box) > self.presence]  # the same second look
            boxes = np.concatenate([boxes, np.asarray(more, int).reshape(-1, 4)])
            angles = np.concatenate([angles, np.zeros(len(more))])
        return boxes, angles

    def _follow(self, image, boxes):
        """Each face seen at one of `boxes` (x, y, w, h, where it is heading), looked for in a square REACH
        times its size about it, up to nine faces a call: by the short-range net where the square is at
        least NEAR_SQUARE px, then by the full-range net where that did not find it. (score, box, eyes),
        or None where neither found it."""
        squares = [(x + w / 2 - REACH * max(w, h) / 2, y + h / 2 - REACH * max(w, h) / 2, REACH * max(w, h))
                   for x, y, w, h in boxes]
        followed = [None] * len(boxes)

        def look(net, which, threshold):  # fills followed[i] for each i in which whose face the net finds
            for i, found in zip(which, net.find(image, [squares[i] for i in which], threshold)):
                best = max(found, key=lambda face: iou(face[1], boxes[i]), default=None)
                if best is not None and iou(best[1], boxes[i]) >= 0.25:
                    followed[i] = best

        near = [i for i, square in enumerate(squares) if square[2] >= NEAR_SQUARE]
        if near:
            look(self.short, near, self.threshold)
        missed = [i for i in range(len(boxes)) if followed[i] is None]
        if missed:
            look(self.full, missed, FOLLOW)
        return followed


class TileScan:
    """A whole scan's tiles (BlazeDetector.tiles) dealt out over `frames` frames: share() is this frame's."""

    def __init__(self, detector, frames):
        self.detector, self.frames = detector, max(1, frames)
        self.shape, self.turns, self.turn = None, [], 0

    def share(self, shape):
        if shape != self.shape:
            self.shape, self.turn = shape, 0
            tiles = self.detector.tiles(shape)
            self.turns = [tiles[i::self.frames] for i in range(self.frames)]
        tiles = self.turns[self.turn]
        self.turn = (self.turn + 1) % self.frames
        return tiles

    def restart(self):
        self.turn = 0


def as_color(frame, gray):
    """A BGR uint8 picture for the nets: the frame itself where it is one, else the gray copy in three channels."""
    return frame if is_bgr(frame) else cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
