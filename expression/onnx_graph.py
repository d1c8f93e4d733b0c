"""Write a small feed-forward net as an ONNX model (bytes), for OpenCV's DNN engine to read.

ONNX files are protocol buffers; the handful of messages a conv net needs (model, graph, node,
attribute, tensor, value info) are encoded here directly, so the live path needs neither
TensorFlow nor the onnx package to run the net. Field numbers are those of onnx.proto.
Layout is NCHW, as ONNX and OpenCV expect.
"""
import numpy as np

OPSET = 13
IR_VERSION = 7  # the IR version of opset 13's release
FLOAT, INT64 = 1, 7  # TensorProto.DataType
ATTR_INT, ATTR_INTS = 2, 7  # AttributeProto.AttributeType


def _varint(value):
    value &= (1 << 64) - 1  # negative int64s are ten-byte varints
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number, wire, payload):
    return _varint(number << 3 | wire) + payload


def _int(number, value):
    return _field(number, 0, _varint(int(value)))


def _bytes(number, data):
    data = data.encode() if isinstance(data, str) else data
    return _field(number, 2, _varint(len(data)) + data)


def tensor(name, array):
    """TensorProto: float32 or int64 values as raw little-endian bytes."""
    array = np.asarray(array)
    kind = INT64 if array.dtype.kind in "iu" else FLOAT
    array = np.ascontiguousarray(array, "<i8" if kind == INT64 else "<f4")
    return (b"".join(_int(1, d) for d in array.shape) + _int(2, kind) + _bytes(8, name)
            + _bytes(9, array.tobytes()))


def _attribute(name, value):
    if isinstance(value, (list, tuple)):
        return _bytes(1, name) + b"".join(_int(8, v) for v in value) + _int(20, ATTR_INTS)
    return _bytes(1, name) + _int(3, value) + _int(20, ATTR_INT)


def node(op, inputs, outputs, **attributes):
    """NodeProto: op_type, its inputs and outputs by name, integer attributes."""
    return (b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in outputs)
            + _bytes(3, outputs[0]) + _bytes(4, op)
            + b"".join(_bytes(5, _attribute(k, v)) for k, v in attributes.items()))


def _value_info(name, shape):
    """ValueInfoProto of a float tensor; None in `shape` is a named free dimension (the batch)."""
    dims = b"".join(_bytes(1, _bytes(2, "batch") if d is None else _int(1, d)) for d in shape)
    tensor_type = _int(1, FLOAT) + _bytes(2, dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


def model(nodes, initializers, input_name, input_shape, output_name, output_shape):
    """ModelProto bytes of one graph: `nodes` (node()), `initializers` (tensor()), one input and one output."""
    graph = (b"".join(_bytes(1, n) for n in nodes) + _bytes(2, "emotion_cnn")
             + b"".join(_bytes(5, t) for t in initializers)
             + _bytes(11, _value_info(input_name, input_shape)) + _bytes(12, _value_info(output_name, output_shape)))
    opset = _bytes(1, "") + _int(2, OPSET)
    return _int(1, IR_VERSION) + _bytes(2, "facial-expression") + _bytes(7, graph) + _bytes(8, opset)
