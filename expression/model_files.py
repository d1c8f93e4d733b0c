"""The model on disk: emotion.json (architecture) + emotion.weights.h5 + labels.json.

Writes are atomic (temporary file in the same folder, then rename), so a crash or a full
disk never leaves a half-written file for realtime.py to load. Loading uses Keras safe
mode, so a JSON cannot run code (a Lambda layer is refused). Keras is imported only by the
functions that need it, so the live path can read a cached export without TensorFlow.
"""
import json
import os
import tempfile
from pathlib import Path

from .data import IMAGE_SIZE
from .labels import EMOTIONS

MODEL_JSON = "emotion.json"
WEIGHTS = "emotion.weights.h5"  # Keras 3 save_weights insists on this suffix
LABELS = "labels.json"


class ModelError(Exception):
    """Model files that cannot be used; str() is the user's message."""


def atomic_write(path, write):
    """Call write(tmp_path), then rename tmp_path over path: readers see old or new, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path, text):
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def save_model(model, out_dir):
    """Write the three files realtime.py needs; weights are stored as float32."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Weights first and architecture last, so a folder never pairs a new JSON with old weights
    # for longer than one rename.
    # A compiled model's JSON carries its compile config, and a model rebuilt from it saves the
    # optimizer's slots with its weights (2x the size): ship architecture and weights only.
    clean = plain_copy(model)
    atomic_write(out_dir / WEIGHTS, lambda tmp: save_staged(tmp, ".weights.h5", clean.save_weights))
    atomic_write_text(out_dir / LABELS, json.dumps({"labels": list(EMOTIONS), "image_size": IMAGE_SIZE}, indent=2))
    atomic_write_text(out_dir / MODEL_JSON, json.dumps(_architecture(clean), indent=2))


def held_model_files(folder):
    """The model files already in `folder`: a script must not replace them unless asked."""
    return [name for name in (MODEL_JSON, WEIGHTS) if (Path(folder) / name).is_file()]


def plain_copy(model):
    """The model as it ships: float32 layers, no compile config, outside any distribution strategy.

    A model trained in mixed precision would otherwise ship its bfloat16 compute policy, slow
    and less exact on CPUs without bfloat16 units; its variables are float32 already.
    """
    import keras

    config = _architecture(model)
    _float32_policies(config)
    training_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")  # Sequential itself takes the global policy
    try:
        clean = keras.models.model_from_json(json.dumps(config))
    finally:
        keras.mixed_precision.set_global_policy(training_policy)
    clean.set_weights(model.get_weights())
    return clean


def _architecture(model):
    config = json.loads(model.to_json())
    config.pop("compile_config", None)  # the shipped model needs no optimizer
    return config


def _float32_policies(node):
    if isinstance(node, dict):
        if node.get("class_name") == "DTypePolicy" and node["config"]["name"].startswith("mixed_"):
            node["config"]["name"] = "float32"
        for value in node.values():
            _float32_policies(value)
    elif isinstance(node, list):
        for value in node:
            _float32_policies(value)


def save_staged(tmp, suffix, save):
    """Keras picks the format from the suffix (and insists on it): save as tmp+suffix, move to tmp."""
    staged = str(tmp) + suffix
    save(staged)
    os.replace(staged, tmp)


def load_model_folder(folder):
    """(Keras model, labels) from a folder written by save_model, e.g. models/."""
    folder = Path(folder)
    return load_model(folder / MODEL_JSON, folder / WEIGHTS, folder / LABELS)


def model_paths(model, weights=None, labels=None):
    """(model JSON, weights, labels JSON or None) for a model folder or its JSON: weights and labels default
    to the files beside the JSON. A folder given alone needs its labels.json; otherwise a missing one means
    FER2013's order (None)."""
    model = Path(model)
    folder = model.is_dir() or model.suffix.lower() != ".json"  # a missing folder is named as one in errors
    model_json = model / MODEL_JSON if folder else model
    labels_json = Path(labels) if labels else model_json.with_name(LABELS)
    required = bool(labels) or (folder and weights is None)
    return (model_json, Path(weights) if weights else model_json.with_name(WEIGHTS),
            labels_json if required or labels_json.is_file() else None)


def load_model_files(model, weights=None, labels=None):
    """(Keras model, labels) from a model folder or its JSON (see model_paths)."""
    return load_model(*model_paths(model, weights, labels))


def load_model(model_json, weights, labels_json=None):
    """(Keras model, labels) from files; every problem is a ModelError naming the file and the fix."""
    import keras

    model_json, weights = Path(model_json), Path(weights)
    for path in (model_json, weights):
        if not path.is_file():
            raise ModelError(f"{path}: model file not found; pass the folder train.py wrote (emotion.json and "
                             "emotion.weights.h5), or run train.py to create it")
    try:
        text = model_json.read_text()
        json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ModelError(f"{model_json}: not a Keras model JSON ({error.__class__.__name__}); re-export it with train.py")
    try:
        model = keras.models.model_from_json(text)  # safe_mode is on: no code from the JSON
    except Exception as error:  # Keras raises many types here; all mean "cannot rebuild"
        first = str(error).strip().splitlines()[0] if str(error).strip() else error.__class__.__name__
        raise ModelError(f"{model_json}: cannot rebuild the model ({first[:160]}); use a Keras 3 JSON written by train.py")
    shape = tuple(model.input_shape[1:]) if hasattr(model, "input_shape") else None
    if shape != (IMAGE_SIZE, IMAGE_SIZE, 1):
        raise ModelError(f"{model_json}: model takes input {shape}, expected (48, 48, 1) grayscale faces; "
                         "use a model trained by train.py")
    try:
        model.load_weights(weights)
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else error.__class__.__name__
        raise ModelError(f"{weights}: weights do not fit {model_json} ({first[:160]}); "
                         "pass the weights saved together with this JSON")
    classes = model.output_shape[-1]
    labels = list(EMOTIONS)
    if labels_json is not None:
        if not Path(labels_json).is_file():
            raise ModelError(f"{labels_json}: labels file not found; keep the labels.json train.py wrote beside the model")
        try:
            labels = json.loads(Path(labels_json).read_text())["labels"]
        except (OSError, ValueError, KeyError, TypeError):
            raise ModelError(f"{labels_json}: not a labels file (expected {{\"labels\": [...]}}); re-run train.py")
    if classes != len(labels):
        raise ModelError(f"{model_json}: model has {classes} outputs but {labels_json or 'the label list'} names "
                         f"{len(labels)} emotions; use the labels.json saved with this model")
    return model, labels
