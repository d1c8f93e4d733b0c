"""Faces rolled to one side: scan rotated copies of a picture, map the boxes back, crop them upright.

The frontal cascade finds faces rolled by up to about 15 degrees. A head leaning further, as in
a selfie or on a hand, is upright in a copy of the picture rotated by about as much the other
way, so the detector scans copies rotated by each of TILTS and each box found there is carried
back to the picture: same size, centred where the face is. Its angle goes with it, and the crop
given to the classifier is cut from the picture rotated by that angle about the face's centre
(upright_crop), so the net sees the face as FER2013's upright crops show faces.
"""
import cv2
import numpy as np

from .boxes import drop_overlaps, not_on

TILTS = (25, -25)  # degrees, counter-clockwise as OpenCV turns a picture: a copy each


def rotation(shape, angle):
    """The 2x3 matrix turning a picture of `shape` by `angle` degrees about its centre onto a canvas
    big enough to hold all of it, and that canvas's (width, height)."""
    height, width = shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    size = (int(np.ceil(width * cos + height * sin)), int(np.ceil(width * sin + height * cos)))
    matrix[:, 2] += (size[0] - width) / 2, (size[1] - height) / 2
    return matrix, size


def tilted_faces(detect, gray, known=(), tilts=TILTS):
    """(boxes (N, 4) int, angles (N,)): faces `detect` (gray -> boxes) finds only in rotated copies.

    Boxes are in `gray`'s pixels, each the face's own size, centred on it; faces on a box of
    `known` (found upright already) are left out, and a face found at two angles counts once.
    """
    found = []
    for angle in tilts:
        matrix, size = rotation(gray.shape, angle)
        turned = cv2.warpAffine(gray, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        back = cv2.invertAffineTransform(matrix)
        for x, y, w, h in detect(turned):
            cx, cy = back @ (x + w / 2, y + h / 2, 1.0)
            if 0 <= cx < gray.shape[1] and 0 <= cy < gray.shape[0]:  # not on the canvas' filled corners
                found.append(((int(round(cx - w / 2)), int(round(cy - h / 2)), int(w), int(h)), angle))
    angle_of = {}
    for box, angle in found:  # a box found at two angles keeps the first
        angle_of.setdefault(box, angle)
    kept = not_on(drop_overlaps(list(angle_of)), known)
    return np.asarray(kept, int).reshape(-1, 4), np.asarray([angle_of[box] for box in kept], float)


def upright_crop(gray, box, angle):
    """The `box` region of `gray` turned by `angle` degrees about its centre, at full resolution.

    Only the crop is computed: the rotation's translation puts the box's centre in the crop's.
    """
    x, y, w, h = (float(v) for v in box)
    side = max(1, int(round(max(w, h))))
    matrix = cv2.getRotationMatrix2D((x + w / 2, y + h / 2), angle, 1.0)
    matrix[:, 2] += side / 2 - (x + w / 2), side / 2 - (y + h / 2)
    return cv2.warpAffine(gray, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
