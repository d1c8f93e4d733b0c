"""One box per face: how x, y, w, h boxes overlap, and merging the boxes of several scans into one each."""
import cv2
import numpy as np


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


def group_hits(hits, min_neighbors):
    """Raw window hits (from one scan or several) grouped as detectMultiScale groups them, one box a face."""
    grouped, _ = cv2.groupRectangles([list(hit) for hit in hits], min_neighbors, 0.2)
    return drop_overlaps([tuple(box) for box in np.asarray(grouped).reshape(-1, 4)])


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


def of_view(pairs, view):
    """The boxes of those (view, box) pairs that come from `view` (a cascade's index in FaceDetector.views)."""
    return [box for v, box in pairs if v == view]


def not_on(boxes, known):
    """Those of `boxes` that are not on a face of `known` (same_face), in their order."""
    return [box for box in boxes if not any(same_face(box, other) for other in known)]


def merge_views(first, *others):
    """The boxes of several scans of one picture (frontal first, then turned), one per face.

    A face the frontal cascade found keeps its frontal box: it frames the face the way the
    classifier was trained on (FER2013's crops are frontal). Each later list adds only its
    boxes that are not on a face kept already.
    """
    kept = list(first)
    for boxes in others:
        kept += not_on(drop_overlaps(list(boxes)), kept)
    return kept
