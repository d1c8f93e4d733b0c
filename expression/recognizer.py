"""The Python call: EmotionRecognizer().detect_emotions(image), one dict per face, as the `fer` package has it.

It loads its model as realtime.py does (startup.py) and runs the same detector, crop and
classifier (live.py), so the two give the same faces and emotions.
"""
import inspect
import os

import numpy as np

from .classify import MARGIN
from .cascades import CASCADE
from .detectors import CASCADE_OPTIONS, detector_kind, make_detector
from .detect import to_gray
from .draw import label_text
from .source import read_image
from .startup import MODELS, check_model_paths, load_classifier

class EmotionRecognizer:
    """Faces and their emotions in pictures:

        from expression import EmotionRecognizer
        faces = EmotionRecognizer().detect_emotions("photo.jpg")  # or a BGR numpy array
        # [{"box": [x, y, w, h], "emotions": {"angry": 0.02, ...}, "emotion": "happy"}, ...]

    The detector, face crop and model of realtime.py, with its defaults (a test checks they match).
    Each call is a still, as realtime.py treats an image: a full scan, no smoothing from earlier calls.
    TensorFlow logs as usual; with TF_CPP_MIN_LOG_LEVEL=3 set before the first recognizer, it starts
    as quietly as realtime.py (which sets it).
    """

    def __init__(self, model=MODELS, detect_width=0, scale_factor=1.1, min_neighbors=3, cascade=CASCADE, min_face=None,
                 margin=MARGIN, turned=None, tilted=None, detector=None):
        """`model`: a folder written by train.py, or its emotion.json. turned, tilted (None: on, as for any
        picture; Haar only): also look for faces turned to the side, and heads leaning sideways. detector:
        "blazeface" (blaze_detect.BlazeDetector) or "haar" (OpenCV's cascades, with the settings before
        it); None: as realtime.py chooses, the cascades where one of their settings differs from its
        default, else blazeface where its package is installed.
        Raises ModelPathError (a ValueError), DetectorError or ModelError, each with a message saying what to fix."""
        check_model_paths(model)
        cascades = dict(detect_width=detect_width, scale_factor=scale_factor, min_neighbors=min_neighbors,
                        cascade=cascade, turned=turned, tilted=tilted)
        defaults = inspect.signature(EmotionRecognizer.__init__).parameters
        kind = detector_kind(detector, [name for name in CASCADE_OPTIONS if cascades[name] != defaults[name].default])
        detector = make_detector(kind, min_face, **cascades)
        classifier, self.labels = load_classifier(model)
        from .live import LivePipeline
        self.pipeline = LivePipeline(classifier, self.labels, detector, margin=margin, stills=True)

    def detect_emotions(self, image):
        """One dict per face found, with plain ints and floats: box [x, y, w, h], emotions, emotion (the top one)."""
        faces = []
        for track in self.pipeline.analyse(self._frame(image)):
            faces.append({"box": [int(v) for v in track.box],
                          "emotions": {label: float(p) for label, p in zip(self.labels, track.probabilities)},
                          "emotion": label_text(track, self.labels)[0]})
        return faces

    @staticmethod
    def _frame(image):
        if isinstance(image, (str, os.PathLike)):
            frame = read_image(image)
            if frame is None:
                raise ValueError(f"{image}: not a readable image (missing, or not a format OpenCV reads); "
                                 "pass the path of a .jpg or .png file, or a BGR numpy array")
            return frame
        if not isinstance(image, np.ndarray):
            raise TypeError(f"expected a BGR numpy array or an image path, got {type(image).__name__}")
        if to_gray(image) is None:
            raise ValueError(f"array of shape {image.shape} is not an image; pass an HxWx3 BGR (or HxW gray) array")
        return image
