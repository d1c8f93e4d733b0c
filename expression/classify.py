"""Classify faces: crop each box (with a margin) to 48x48 and run all faces of a frame in one call.

Keras' model.predict costs ~50 ms of set-up per call on these CPUs; a compiled call costs ~3 ms
and a batch of faces about the same as one, so every frame makes exactly one compiled call.
Under TensorFlow the call goes to OpenCV's DNN engine, which runs the same weights in about half
the time for a few faces (bench/realtime_bench.py --classifiers); other models and backends use
a compiled Keras call.
"""
import cv2
import keras
import numpy as np
from keras import layers

from .data import IMAGE_SIZE


def crop_faces(gray, boxes, margin=0.1):
    """(N, 48, 48, 1) float32 crops in 0..255; each box grows by `margin` of its size per side."""
    crops = np.empty((len(boxes), IMAGE_SIZE, IMAGE_SIZE, 1), np.float32)
    height, width = gray.shape[:2]
    for i, (x, y, w, h) in enumerate(boxes):
        dx, dy = int(w * margin), int(h * margin)
        x0, y0 = max(0, x - dx), max(0, y - dy)
        x1, y1 = min(width, x + w + dx), min(height, y + h + dy)
        face = gray[y0:y1, x0:x1] if x1 > x0 and y1 > y0 else np.zeros((1, 1), np.uint8)
        crops[i, :, :, 0] = cv2.resize(face, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    return crops


class EmotionClassifier:
    """probabilities(crops) -> (N, 7), through one compiled forward pass."""

    def __init__(self, model, engine="auto"):
        self.model = model
        self.classes = model.output_shape[-1]
        net = opencv_net(model) if engine in ("auto", "opencv") else None
        if engine == "opencv" and net is None:
            raise ValueError("this model or backend cannot run on OpenCV's DNN engine")
        self.engine = "opencv" if net is not None else "keras"
        self._forward = _opencv_forward(net) if net is not None else _compile(model)
        self._forward(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 1), np.float32))  # set up now, not on the first face

    def probabilities(self, crops):
        if len(crops) == 0:
            return np.zeros((0, self.classes), np.float32)
        return np.asarray(keras.ops.convert_to_numpy(self._forward(crops)), np.float32)


def _compile(model):
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        # One trace for any number of faces: the batch dimension is left open.
        spec = tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 1], tf.float32)
        return tf.function(lambda x: model(x, training=False), input_signature=[spec], reduce_retracing=True)
    return model.predict_on_batch  # jitted by Keras on other backends


def _opencv_forward(net):
    def forward(crops):
        net.setInput(np.ascontiguousarray(np.transpose(crops, (0, 3, 1, 2))))  # OpenCV wants NCHW
        return net.forward()
    return forward


def opencv_net(model):
    """The model as an OpenCV DNN net, or None where a layer or the backend does not allow it.

    The layers are written out as a frozen TensorFlow graph that OpenCV reads. BatchNorm and the
    input scaling are folded into the weights of the conv or dense layer next to them (exact up
    to float rounding), since OpenCV's reader does not take Keras' BatchNorm ops.
    """
    if keras.backend.backend() != "tensorflow":
        return None
    steps = _inference_steps(model)
    if steps is None:
        return None
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
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # a refusal is handled below
    try:
        return cv2.dnn.readNetFromTensorflow(np.frombuffer(frozen.SerializeToString(), np.uint8))
    except cv2.error:
        return None
    finally:
        cv2.utils.logging.setLogLevel(level)


def _inference_steps(model):
    """The model's inference as a list of simple steps with folded weights; None if not possible."""
    steps, scale = [], 1.0  # `scale`: a Rescaling not yet folded into the next weights
    for layer in model.layers:
        if isinstance(layer, layers.Dropout):
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
    return steps if scale == 1.0 else None


def _plain(layer):
    """A conv or dense layer this module can fold: channels-last, no dilation or groups, simple activation."""
    if layer.activation not in (keras.activations.linear, keras.activations.relu, keras.activations.softmax):
        return False
    if isinstance(layer, layers.Conv2D):
        return (type(layer) is layers.Conv2D and layer.data_format == "channels_last"
                and tuple(layer.dilation_rate) == (1, 1) and layer.groups == 1)
    return type(layer) is layers.Dense and len(layer.kernel.shape) == 2
