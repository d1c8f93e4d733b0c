"""Facial expression recognition: the shared code behind train.py and realtime.py.

Training side, in the order the data flows: data (and FER+ `votes`) -> augment -> model -> fit
-> `neutral` (where neutral begins, folded into the net) -> report.
Live side: source -> detect -> classify -> track -> draw -> sink, with `live` running
one frame through detect..draw. Detection is several small modules: `cascades` (the Haar files),
`detect` (scanning), `spread` (a stream's scan spread over frames), `tilt` (rotated copies),
`check` (the second look at a box) and `boxes` (one box per face); `export` (with `onnx_graph`)
builds the net OpenCV runs from the model files. `labels`, `model_files` and `backend` serve both sides.
`recognizer` is the Python call: `from expression import EmotionRecognizer`.
"""

__all__ = ["EmotionRecognizer"]


def __getattr__(name):
    # Imported on first use: `import expression` stays light (no OpenCV, no Keras) for train.py.
    if name == "EmotionRecognizer":
        from .recognizer import EmotionRecognizer
        return EmotionRecognizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
