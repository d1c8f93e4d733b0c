"""Start the live side fast and quietly: model paths checked before anything loads, the net built
for OpenCV from the model files (then TensorFlow is never imported), and TensorFlow's native
start-up lines kept off the terminal where a model needs it.

Shared by realtime.py and EmotionRecognizer, so the two load models the same way.
"""
from pathlib import Path

from .backend import quiet_native_logs

def bundled_models():
    """The bundled model's folder: expression/bundled/ where `pip install .` put it, else the repository's
    models/ beside this package, wherever we run from."""
    here = Path(__file__).resolve().parent
    installed = here / "bundled"
    return installed if (installed / "emotion.json").is_file() else here.parent / "models"


MODELS = bundled_models()

class ModelPathError(ValueError):
    """A model path that cannot be right; str() is the user's message."""


def check_model_paths(model, weights=None, labels=None):
    """Check --model (a folder train.py wrote, or its emotion.json), --weights and --labels by path alone."""
    model = Path(model)
    if model.suffix.lower() in (".keras", ".h5", ".hdf5"):
        raise ModelPathError(f"{model}: {model.suffix} files are not read here; pass the folder train.py wrote "
                             "(e.g. models/) or the emotion.json in it, with its emotion.weights.h5 beside it")
    if not model.exists():
        raise ModelPathError(f"{model}: model not found; pass the folder train.py wrote (e.g. models/) or its "
                             "emotion.json, or run train.py to create one")
    if model.is_dir():
        from .model_files import MODEL_JSON, WEIGHTS  # file names only: no Keras import

        needed = [MODEL_JSON] + ([WEIGHTS] if weights is None else [])
        missing = [name for name in needed if not (model / name).is_file()]
        if missing:
            raise ModelPathError(f"{model}: no {missing[0]} in this folder; pass the folder train.py wrote "
                                 "(it holds emotion.json and emotion.weights.h5)")
    for path, flag in ((weights, "--weights"), (labels, "--labels")):
        if path is not None and not Path(path).is_file():
            raise ModelPathError(f"{path}: {flag} file not found; pass {flag} PATH, or leave it out to use the "
                                 "one beside the model")


def load_classifier(model, weights=None, labels=None):
    """(EmotionClassifier, labels) for a model folder or JSON; raises ModelError naming the fix
    (a Keras backend that cannot load included).

    The net is built for OpenCV straight from the model files (export.py): no TensorFlow is imported.
    Only a model with a layer that export.py cannot fold goes through Keras (its native log lines held back).
    """
    from .classify import EmotionClassifier
    from .export import net_from_files
    from .model_files import LABELS, load_model_files, model_paths

    model_json, weights_path, _ = model_paths(model, weights, labels)
    net = net_from_files(model_json, weights_path) if model_json.is_file() and weights_path.is_file() else None
    if net is not None:
        names = _labels(Path(labels) if labels else model_json.with_name(LABELS), net.classes)
        if names is not None:
            return EmotionClassifier(net=net), names
    from .backend import backend_problem
    from .model_files import ModelError

    problem = backend_problem()  # imports Keras, quietly
    if problem:
        raise ModelError(problem)
    with quiet_native_logs():
        keras_model, names = load_model_files(model, weights, labels)
        classifier = EmotionClassifier(keras_model)
    return classifier, names


def _labels(path, classes):
    """The label list of a labels.json (FER2013's when there is none), or None when it does not fit."""
    import json

    from .labels import EMOTIONS

    if not path.is_file():
        return list(EMOTIONS) if classes == len(EMOTIONS) else None
    try:
        names = json.loads(path.read_text())["labels"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # Keras' loader then names the problem
    return names if len(names) == classes else None
