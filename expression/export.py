"""Export the Keras net for OpenCV's DNN engine, and cache the export beside the weights.

OpenCV runs the same weights in about half the time of a compiled Keras call for a few faces,
and a cached export loads without TensorFlow, so the live demo starts in about a second.

The layers are written out as a frozen TensorFlow graph that OpenCV reads. BatchNorm and
scalings are folded into the weights of the conv or dense layer next to them (exact up to
float rounding), since OpenCV's reader does not take Keras' BatchNorm ops. What comes before
the first conv (the 0..255 scaling and the per-face contrast standardisation) runs in numpy:
it is a few thousand multiplications per face, and an offset there would change what "same"
padding pads with if it were folded into the conv.

The cache is two files beside the weights: emotion.opencv.pb (the graph) and
emotion.opencv.json (the numpy input steps and the SHA-256 of the JSON and weights it was
made from, so a retrained model never runs with a stale export).
"""
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np

GRAPH = "emotion.opencv.pb"
META = "emotion.opencv.json"


class OpenCVNet:
    """probabilities = net(input_steps(crops)); crops are (N, 48, 48, 1) float32 in 0..255."""

    def __init__(self, graph_bytes, input_steps, classes):
        self.graph_bytes, self.input_steps, self.classes = graph_bytes, input_steps, classes
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # a refusal is handled by the caller
        try:
            self.net = cv2.dnn.readNetFromTensorflow(np.frombuffer(graph_bytes, np.uint8))
        finally:
            cv2.utils.logging.setLogLevel(level)

    def __call__(self, crops):
        x = prepare_input(crops, self.input_steps)
        self.net.setInput(np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2))))  # OpenCV wants NCHW
        return self.net.forward()


def prepare_input(crops, steps):
    """Apply the numpy input steps (scale / standardise) to a batch of crops."""
    x = np.asarray(crops, np.float32)
    for kind, *params in steps:
        if kind == "scale":
            scale, offset = params
            x = x * np.float32(scale) + np.float32(offset)
        elif kind == "standardize":  # Keras LayerNormalization over (H, W, C), no centre or scale
            (epsilon,) = params
            mean = x.mean(axis=(1, 2, 3), keepdims=True)
            variance = x.var(axis=(1, 2, 3), keepdims=True)
            x = (x - mean) / np.sqrt(variance + np.float32(epsilon))
    return x.astype(np.float32)


def opencv_net(model):
    """The Keras model as an OpenCVNet, or None where a layer or the backend does not allow it."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return None
    plan = _inference_plan(model)
    if plan is None:
        return None
    input_steps, steps = plan
    try:
        return OpenCVNet(_frozen_graph(model, steps), input_steps, model.output_shape[-1])
    except cv2.error:
        return None


def save_cache(net, folder):
    """Write the export beside the model files it came from (atomically); False where it cannot."""
    from .model_files import MODEL_JSON, WEIGHTS, atomic_write, atomic_write_text

    folder = Path(folder)
    meta = {"made_from": _fingerprints(folder / MODEL_JSON, folder / WEIGHTS),
            "input_steps": net.input_steps, "classes": net.classes}
    try:
        atomic_write(folder / GRAPH, lambda tmp: Path(tmp).write_bytes(net.graph_bytes))
        atomic_write_text(folder / META, json.dumps(meta, indent=2))  # last: it is what load_cache trusts
    except OSError:  # a read-only model folder: the live path simply exports again next time
        return False
    return True


def load_cache(folder):
    """The cached OpenCVNet for the model files in `folder`, or None if absent, stale or unreadable."""
    from .model_files import MODEL_JSON, WEIGHTS

    folder = Path(folder)
    try:
        meta = json.loads((folder / META).read_text())
        if meta["made_from"] != _fingerprints(folder / MODEL_JSON, folder / WEIGHTS):
            return None
        return OpenCVNet((folder / GRAPH).read_bytes(), [list(step) for step in meta["input_steps"]],
                         int(meta["classes"]))
    except (OSError, ValueError, KeyError, TypeError, cv2.error):
        return None


def _fingerprints(*paths):
    return {Path(path).name: hashlib.sha256(Path(path).read_bytes()).hexdigest() for path in paths}


def _frozen_graph(model, steps):
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    @tf.function(input_signature=[tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)])
    def graph(x):
        for kind, *params in steps:
            if kind == "conv":
                kernel, bias, strides, padding = params
                x = tf.nn.bias_add(tf.nn.conv2d(x, tf.constant(kernel), strides, padding), tf.constant(bias))
            elif kind == "dense":
                kernel, bias = params
                x = tf.nn.bias_add(tf.matmul(x, tf.constant(kernel)), tf.constant(bias))
            elif kind == "relu":
                x = tf.nn.relu(x)
            elif kind == "softmax":
                x = tf.nn.softmax(x)
            elif kind == "pool":
                size, strides, padding = params
                x = tf.nn.max_pool2d(x, size, strides, padding)
            elif kind == "flatten":
                x = tf.reshape(x, tf.constant([-1, int(np.prod(x.shape[1:]))], tf.int32))
        return x

    frozen = convert_variables_to_constants_v2(graph.get_concrete_function()).graph.as_graph_def()
    for node in frozen.node:
        if node.op != "Const":  # (indexing a node's attr map adds the key: look at constants only)
            continue
        value = node.attr["value"].tensor
        if value.dtype == tf.float32.as_datatype_enum and not value.tensor_content:
            # TensorFlow stores an all-equal constant (a zero bias) as one number; OpenCV wants every value.
            array = tf.make_ndarray(value)
            value.ClearField("float_val")
            value.tensor_content = array.astype(np.float32).tobytes()
    return frozen.SerializeToString()


def _inference_plan(model):
    """(numpy input steps, graph steps with folded weights) for the model's inference; None if not possible."""
    import keras
    from keras import layers

    input_steps, steps, scale = [], [], 1.0  # `scale`: a Rescaling not yet folded into the next weights
    for layer in model.layers:
        if isinstance(layer, layers.Dropout):
            continue
        if not steps and _input_step(layer) is not None:  # before the first conv: numpy does it
            input_steps.append(_input_step(layer))
            continue
        folds = isinstance(layer, (layers.Rescaling, layers.Conv2D, layers.Dense))
        if scale != 1.0 and not folds:
            return None  # a scaling must reach the next conv or dense weights untouched
        if isinstance(layer, layers.Rescaling):
            if np.any(np.asarray(layer.offset) != 0) or np.ndim(layer.scale) != 0:
                return None  # an offset would change what "same" padding pads with
            scale *= float(layer.scale)
        elif isinstance(layer, (layers.Conv2D, layers.Dense)) and _plain(layer):
            kernel = layer.kernel.numpy().astype(np.float32) * scale
            bias = layer.bias.numpy().astype(np.float32) if layer.use_bias else np.zeros(kernel.shape[-1], np.float32)
            scale = 1.0
            if isinstance(layer, layers.Conv2D):
                steps.append(["conv", kernel, bias, list(layer.strides), layer.padding.upper()])
            else:
                steps.append(["dense", kernel, bias])
            if layer.activation is keras.activations.relu:
                steps.append(["relu"])
            elif layer.activation is keras.activations.softmax:
                steps.append(["softmax"])
        elif isinstance(layer, layers.BatchNormalization):
            if not steps or steps[-1][0] not in ("conv", "dense") or layer.axis not in (-1, len(layer.input.shape) - 1):
                return None
            gamma = layer.gamma.numpy() if layer.scale else 1.0
            beta = layer.beta.numpy() if layer.center else 0.0
            factor = gamma / np.sqrt(layer.moving_variance.numpy() + layer.epsilon)
            steps[-1][1] = (steps[-1][1] * factor).astype(np.float32)
            steps[-1][2] = ((steps[-1][2] - layer.moving_mean.numpy()) * factor + beta).astype(np.float32)
        elif isinstance(layer, layers.ReLU) and layer.max_value is None and not layer.negative_slope and not layer.threshold:
            steps.append(["relu"])
        elif isinstance(layer, layers.MaxPooling2D) and layer.data_format == "channels_last":
            steps.append(["pool", list(layer.pool_size), list(layer.strides), layer.padding.upper()])
        elif isinstance(layer, layers.Flatten) and layer.data_format == "channels_last":
            steps.append(["flatten"])
        else:
            return None
    return (input_steps, steps) if scale == 1.0 and steps else None


def _input_step(layer):
    """A numpy step for a scaling or a whole-image standardisation; None for any other layer."""
    from keras import layers

    if isinstance(layer, layers.Rescaling) and np.ndim(layer.scale) == 0 and np.ndim(layer.offset) == 0:
        return ["scale", float(layer.scale), float(layer.offset)]
    if (isinstance(layer, layers.LayerNormalization) and not layer.center and not layer.scale
            and sorted(a % 4 for a in np.atleast_1d(layer.axis)) == [1, 2, 3]):
        return ["standardize", float(layer.epsilon)]
    return None


def _plain(layer):
    """A conv or dense layer this module can fold: channels-last, no dilation or groups, simple activation."""
    import keras
    from keras import layers

    if layer.activation not in (keras.activations.linear, keras.activations.relu, keras.activations.softmax):
        return False
    if isinstance(layer, layers.Conv2D):
        return (type(layer) is layers.Conv2D and layer.data_format == "channels_last"
                and tuple(layer.dilation_rate) == (1, 1) and layer.groups == 1)
    return type(layer) is layers.Dense and len(layer.kernel.shape) == 2
