"""The net for OpenCV's DNN engine, built straight from the model files: no TensorFlow, no cache.

OpenCV runs the same weights in about half the time of a compiled Keras call for a few faces.
The net is rebuilt from emotion.json (the layer list) and emotion.weights.h5 (read with h5py)
each time a model loads, in about 0.1 s, so the live side needs only OpenCV, numpy and h5py,
and nothing beside the weights can go stale or grow the repository with every shipped model.

BatchNorm and scalings are folded into the weights of the conv or dense layer next to them
(exact up to float rounding); the result is written as a small ONNX graph (onnx_graph.py) in
OpenCV's NCHW layout. What comes before the first conv (the 0..255 scaling and the per-face
contrast standardisation) runs in numpy: a few thousand multiplications per face, and an
offset there would change what "same" padding pads with if it were folded into the conv.
A layer this module does not know makes `plan` return None, and the caller uses Keras instead.
"""
import json
from pathlib import Path

import cv2
import numpy as np

from . import onnx_graph


class OpenCVNet:
    """probabilities = net(crops): crops (N, 48, 48, 1) float32 in 0..255, through numpy's input steps
    and one OpenCV DNN forward pass."""

    def __init__(self, graph_bytes, input_steps, classes):
        self.graph_bytes, self.input_steps, self.classes = graph_bytes, input_steps, classes
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # a refusal is handled by the caller
        try:
            self.net = cv2.dnn.readNetFromONNX(np.frombuffer(graph_bytes, np.uint8))
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


def net_from_files(model_json, weights):
    """The model files as an OpenCVNet, or None where a layer or the files do not allow it."""
    try:
        config = json.loads(Path(model_json).read_text())
        layers = config["config"]["layers"]
        arrays = read_weights(weights)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return _net(layers, arrays)


def opencv_net(model):
    """A Keras model as an OpenCVNet, or None where a layer does not allow it."""
    layers = json.loads(model.to_json())["config"]["layers"]
    return _net(layers, {layer.name: [np.asarray(w) for w in layer.get_weights()] for layer in model.layers})


def read_weights(path):
    """{layer name: [arrays]} from a Keras 3 .weights.h5 file (layers/<group>/vars/<i>, named by an attribute)."""
    import h5py

    found = {}
    with h5py.File(path, "r") as f:
        for group in f["layers"].values():
            variables = group.get("vars")
            if variables is None or "name" not in variables.attrs:
                continue
            name = variables.attrs["name"]
            found[name.decode() if isinstance(name, bytes) else str(name)] = [
                np.asarray(variables[key]) for key in sorted(variables, key=int)]
    return found


def _net(layers, arrays):
    planned = plan(layers, arrays)
    if planned is None:
        return None
    input_steps, steps, input_shape = planned
    try:
        return OpenCVNet(_onnx(steps, input_shape), input_steps, steps[-2][1].shape[-1])
    except (cv2.error, IndexError):
        return None


def plan(layers, arrays):
    """(numpy input steps, net steps with folded weights, input (H, W, C)) for a Sequential's layer configs
    and {layer name: weights}; None for a layer or setting this module cannot fold."""
    input_steps, steps, scale, shape = [], [], 1.0, None  # `scale`: a Rescaling not yet folded into weights
    for layer in layers:
        kind, config = layer.get("class_name"), layer.get("config", {})
        weights = arrays.get(config.get("name"), [])
        if kind == "InputLayer":
            shape = tuple(config.get("batch_shape") or config.get("batch_input_shape"))[1:]
            continue
        if kind == "Dropout":
            continue
        if config.get("data_format") not in (None, "channels_last"):
            return None
        if not steps and _input_step(kind, config) is not None:  # before the first conv: numpy does it
            input_steps.append(_input_step(kind, config))
            continue
        if scale != 1.0 and kind not in ("Rescaling", "Conv2D", "Dense"):
            return None  # a scaling must reach the next conv or dense weights untouched
        if kind == "Rescaling":
            if np.ndim(config["scale"]) != 0 or np.any(np.asarray(config.get("offset", 0)) != 0):
                return None  # an offset would change what "same" padding pads with
            scale *= float(config["scale"])
        elif kind in ("Conv2D", "Dense") and _plain(kind, config) and weights:
            kernel = np.asarray(weights[0], np.float32) * scale
            bias = np.asarray(weights[1], np.float32) if config.get("use_bias", True) else np.zeros(kernel.shape[-1],
                                                                                                   np.float32)
            scale = 1.0
            if kind == "Conv2D":
                steps.append(["conv", kernel, bias, list(config.get("strides", (1, 1))), config["padding"]])
            else:
                steps.append(["dense", kernel, bias])
            if config.get("activation") in ("relu", "softmax"):
                steps.append([config["activation"]])
        elif kind == "BatchNormalization":
            if not steps or steps[-1][0] not in ("conv", "dense") or config.get("axis") not in (-1, [-1], 3, [3], 1, [1]):
                return None
            weights = list(weights)
            gamma = weights.pop(0) if config.get("scale", True) else 1.0
            beta = weights.pop(0) if config.get("center", True) else 0.0
            mean, variance = weights
            factor = gamma / np.sqrt(variance + config.get("epsilon", 1e-3))
            steps[-1][1] = (steps[-1][1] * factor).astype(np.float32)
            steps[-1][2] = ((steps[-1][2] - mean) * factor + beta).astype(np.float32)
        elif kind == "ReLU" and config.get("max_value") is None and not config.get("negative_slope") \
                and not config.get("threshold"):
            steps.append(["relu"])
        elif kind == "MaxPooling2D":
            steps.append(["pool", list(config["pool_size"]), list(config.get("strides") or config["pool_size"]),
                          config.get("padding", "valid")])
        elif kind == "Flatten":
            steps.append(["flatten"])
        elif kind == "GlobalAveragePooling2D" and not config.get("keepdims"):
            steps.append(["gap"])
        else:
            return None
    if scale != 1.0 or not steps or steps[-1] != ["softmax"] or shape is None:
        return None
    return input_steps, steps, shape


def _input_step(kind, config):
    """A numpy step for a scaling or a whole-image standardisation; None for any other layer."""
    if kind == "Rescaling" and np.ndim(config["scale"]) == 0 and np.ndim(config.get("offset", 0)) == 0:
        return ["scale", float(config["scale"]), float(config.get("offset", 0))]
    axis = sorted(a % 4 for a in np.atleast_1d(config.get("axis", -1)))
    if kind == "LayerNormalization" and not config.get("center", True) and not config.get("scale", True) \
            and axis == [1, 2, 3]:
        return ["standardize", float(config.get("epsilon", 1e-3))]
    return None


def _plain(kind, config):
    """A conv or dense layer this module can fold: no dilation or groups, a linear, relu or softmax activation."""
    if config.get("activation", "linear") not in ("linear", "relu", "softmax"):
        return False
    if kind == "Conv2D":
        return tuple(config.get("dilation_rate", (1, 1))) == (1, 1) and config.get("groups", 1) == 1
    return True


def _pads(size, kernel, stride, padding):
    """(pad before, pad after, output size) along one axis, as Keras' 'same' or 'valid' padding has it."""
    if padding == "valid":
        return 0, 0, (size - kernel) // stride + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


def _onnx(steps, input_shape):
    """ONNX bytes of the steps, in NCHW: Keras' HWIO kernels become OIHW, and the first dense layer's
    rows are reordered from Keras' (h, w, c) flattening to NCHW's (c, h, w)."""
    height, width, channels = input_shape
    nodes, tensors, current = [], [], "pixels"
    for i, (kind, *params) in enumerate(steps):
        out = f"{kind}{i}"
        if kind in ("conv", "pool"):
            if kind == "conv":
                kernel, bias, strides, padding = params
                size = list(kernel.shape[:2])
            else:
                size, strides, padding = params
            (top, bottom, height), (left, right, width) = (_pads(height, size[0], strides[0], padding),
                                                           _pads(width, size[1], strides[1], padding))
            shape = dict(kernel_shape=size, strides=strides, pads=[top, left, bottom, right])
            if kind == "conv":
                tensors += [onnx_graph.tensor(f"w{i}", kernel.transpose(3, 2, 0, 1)), onnx_graph.tensor(f"b{i}", bias)]
                nodes.append(onnx_graph.node("Conv", [current, f"w{i}", f"b{i}"], [out], **shape))
                channels = kernel.shape[-1]
            else:
                nodes.append(onnx_graph.node("MaxPool", [current], [out], **shape))
        elif kind == "flatten":
            nodes.append(onnx_graph.node("Flatten", [current], [out], axis=1))
            following = next(s for s in steps[i:] if s[0] == "dense")
            following[1] = (following[1].reshape(height, width, channels, -1).transpose(2, 0, 1, 3)
                            .reshape(height * width * channels, -1))
        elif kind == "gap":  # ONNX keeps the 1x1 map: flatten it to (N, C), the order Keras' pooling gives
            nodes.append(onnx_graph.node("GlobalAveragePool", [current], [f"{out}_map"]))
            nodes.append(onnx_graph.node("Flatten", [f"{out}_map"], [out], axis=1))
        elif kind == "dense":
            kernel, bias = params
            tensors += [onnx_graph.tensor(f"w{i}", kernel), onnx_graph.tensor(f"b{i}", bias)]
            nodes.append(onnx_graph.node("Gemm", [current, f"w{i}", f"b{i}"], [out]))
        elif kind == "relu":
            nodes.append(onnx_graph.node("Relu", [current], [out]))
        elif kind == "softmax":
            nodes.append(onnx_graph.node("Softmax", [current], [out], axis=-1))
        current = out
    classes = steps[-2][1].shape[-1]
    return onnx_graph.model(nodes, tensors, "pixels", [None, input_shape[2], *input_shape[:2]], current,
                            [None, classes])
