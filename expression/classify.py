"""Classify faces: crop each box (with a margin) to 48x48 and run all faces of a frame in one call.

Keras' model.predict costs ~50 ms of set-up per call on these CPUs; a compiled call costs ~3 ms
and a batch of faces about the same as one, so every frame makes exactly one compiled call.
The call goes to OpenCV's DNN engine (export.py), which runs the same weights in about half the
time for a few faces (bench/realtime_bench.py --classifiers); a model with layers export.py
cannot fold uses a compiled Keras call. Keras is imported only when it is used, so the net
built from the model files runs without TensorFlow.
"""
import cv2
import numpy as np

from .data import IMAGE_SIZE
from .tilt import upright_crop


# Context added around each Haar box, per side; negative trims it. FER2013 val faces placed into
# frames, found and cropped by the live code, score closest to FER2013's own crops with the box
# trimmed by 5% a side: the alt2 cascade's box holds more than FER2013's registration does
# (bench/live_accuracy.py; the stage-8 model: 68.5% at -0.05, 66.7% at 0, 62.9% at 0.1).
MARGIN = -0.05


def crop_faces(gray, boxes, margin=MARGIN, angles=None):
    """(N, 48, 48, 1) float32 crops in 0..255; each box grows by `margin` of its size per side.

    `angles` (degrees, one per box; default none): a box found in a rotated copy of the picture
    (tilt.py) is cut turned by its angle, so that the face in the crop is upright.
    """
    crops = np.empty((len(boxes), IMAGE_SIZE, IMAGE_SIZE, 1), np.float32)
    height, width = gray.shape[:2]
    for i, (x, y, w, h) in enumerate(boxes):
        dx, dy = int(w * margin), int(h * margin)
        if angles is not None and angles[i]:
            face = upright_crop(gray, (x - dx, y - dy, w + 2 * dx, h + 2 * dy), angles[i])
            crops[i, :, :, 0] = cv2.resize(face, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
            continue
        x0, y0 = max(0, x - dx), max(0, y - dy)
        x1, y1 = min(width, x + w + dx), min(height, y + h + dy)
        face = gray[y0:y1, x0:x1] if x1 > x0 and y1 > y0 else np.zeros((1, 1), np.uint8)
        crops[i, :, :, 0] = cv2.resize(face, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    return crops


class EmotionClassifier:
    """probabilities(crops) -> (N, 7), through one compiled forward pass.

    Give it a Keras model (it exports it for OpenCV where it can: engine "auto"), or `net`, an
    OpenCVNet already built (export.net_from_files), which needs no TensorFlow at all.
    """

    def __init__(self, model=None, engine="auto", net=None):
        if net is None:
            from .export import opencv_net
            net = opencv_net(model) if engine in ("auto", "opencv") else None
            if engine == "opencv" and net is None:
                raise ValueError("this model or backend cannot run on OpenCV's DNN engine")
        self.model, self.net = model, net
        self.classes = net.classes if net is not None else model.output_shape[-1]
        self.engine = "opencv" if net is not None else "keras"
        self._forward = net if net is not None else _compile(model)
        self._forward(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 1), np.float32))  # set up now, not on the first face

    def probabilities(self, crops):
        if len(crops) == 0:
            return np.zeros((0, self.classes), np.float32)
        return np.asarray(self._forward(crops), np.float32)


def _compile(model):
    import keras

    if keras.backend.backend() == "tensorflow":
        from .model import ensemble_function
        return ensemble_function([model])  # one trace for any number of faces: the batch size is left open
    return model.predict_on_batch  # jitted by Keras on other backends
