"""Which face detector runs: BlazeFace (blaze_detect.py) where its package is installed, else OpenCV's
Haar cascades (detect.py), and the cascades wherever one of their own settings is given.

One place for the rule, so that realtime.py and EmotionRecognizer choose alike.
"""
from . import blazeface
from .blaze_detect import BlazeDetector
from .cascades import DetectorError
from .detect import FaceDetector

# FaceDetector's settings that only the cascades take: giving one chooses them (detector_kind).
CASCADE_OPTIONS = ("turned", "tilted", "detect_width", "scale_factor", "min_neighbors", "cascade")


def detector_kind(kind, cascade_options=()):
    """`kind` ("haar" or "blazeface"), or the default: the cascades where their own options are given
    (`cascade_options`, their names as the caller spells them), else BlazeFace where its package is
    installed (more faces at the cascades' speed: docs/benchmarks.md), else the cascades. Raises
    DetectorError where BlazeFace is asked for with the cascades' options."""
    if kind == "blazeface" and cascade_options:
        raise DetectorError(f"{', '.join(cascade_options)}: the Haar cascades' options, which BlazeFace does not "
                            "take; choose the haar detector (--detector haar) for them, or leave them out")
    if kind:
        return kind
    return "haar" if cascade_options or not blazeface.installed() else "blazeface"


def make_detector(kind, min_face=None, **cascades):
    """The detector realtime.py and EmotionRecognizer run: BlazeDetector, or FaceDetector with the
    cascades' own settings (`cascades`: detect_width, scale_factor, cascade, turned, ...)."""
    if kind == "blazeface":
        return BlazeDetector(min_face=min_face)
    if kind == "haar":
        return FaceDetector(min_face=min_face, **cascades)
    raise ValueError(f"detector={kind!r}: give 'haar' or 'blazeface'")
