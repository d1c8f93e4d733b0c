"""The CNN: a small VGG-style Keras Sequential that reads raw 48x48 grayscale pixels.

Scaling (0..255 -> 0..1) is the model's first layer, so the saved JSON + weights work
with plain Keras and raw pixels, without this project's code.

With normalize=True the next two layers give every face FER2013's typical brightness and
contrast: LayerNormalization over height, width and channel (no learned centre or scale)
standardises each image, and a Rescaling maps it back to FER2013's mean and spread. Webcam
and web photos differ from FER2013 most in exposure and contrast; this removes the difference
for every face, with built-in layers only, so plain Keras still loads the model. Because the
output is on the same scale as plain 0..1 pixels, a model trained without it can start from
its weights (train.py --init).
"""
import keras
import numpy as np
from keras import layers

from .data import IMAGE_SIZE
from .labels import EMOTIONS


# The average FER2013 training face's own mean and spread (standard deviation), on 0..1 pixels:
# 0.514 and 0.304 over ../shared/fer2013/train (docs/experiments.md says how).
FER_MEAN = 0.51
FER_SPREAD = 0.30


HEADS = ("flatten", "gap")


def build_model(width=32, convs=(1, 1, 1, 2), dropout=0.4, normalize=False, dense=None, head="flatten"):
    """Stages of (3x3 conv + BN + ReLU) x convs[stage], then max-pool; filters double each stage.

    One conv in the 48x48 stage: it costs as much as two convs of any later stage, and
    on two CPU cores training speed decides how many epochs we can afford. The dense layer
    (`dense` units, default 8 x width) is under 1% of the multiply-adds: widening it costs
    file size, not live time.

    head="flatten" keeps where each feature is (the last pool's 3x3 grid) for the dense layer;
    head="gap" averages each feature over the last stage's 6x6 map instead (global average pooling,
    as mini-Xception does): a ninth of the dense weights, less tied to where in the crop a trait
    shows, at the same cost. On stage 12's convs it lost on every measure (docs/experiments.md #107).
    """
    if head not in HEADS:
        raise ValueError(f"head {head!r}: one of {', '.join(HEADS)}")
    model = keras.Sequential(name="emotion_cnn")
    model.add(keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="pixels"))
    model.add(layers.Rescaling(1.0 / 255, name="scale"))
    if normalize:
        model.add(layers.LayerNormalization(axis=[1, 2, 3], center=False, scale=False, name="standardize"))
        model.add(layers.Rescaling(FER_SPREAD, offset=FER_MEAN, name="fer_contrast"))
    for stage, n_convs in enumerate(convs):
        filters = width * 2**stage
        for i in range(n_convs):
            # No conv bias: BatchNorm's shift replaces it.
            model.add(layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{stage + 1}_{i + 1}"))
            model.add(layers.BatchNormalization(name=f"bn{stage + 1}_{i + 1}"))
            model.add(layers.ReLU(name=f"relu{stage + 1}_{i + 1}"))
        if head == "gap" and stage == len(convs) - 1:
            model.add(layers.GlobalAveragePooling2D(name="gap"))  # over the last stage's map: pooling first adds nothing
        else:
            model.add(layers.MaxPooling2D(name=f"pool{stage + 1}"))
    if head == "flatten":
        model.add(layers.Flatten(name="flatten"))
    model.add(layers.Dropout(dropout, name="dropout1"))
    model.add(layers.Dense(dense or width * 8, use_bias=False, name="dense"))
    model.add(layers.BatchNormalization(name="bn_dense"))
    model.add(layers.ReLU(name="relu_dense"))
    model.add(layers.Dropout(dropout, name="dropout2"))
    # float32 output keeps softmax exact under mixed precision.
    model.add(layers.Dense(len(EMOTIONS), activation="softmax", dtype="float32", name="emotion"))
    return model


def predict_probabilities(model, images, batch_size=256):
    """(N, 7) softmax probabilities for uint8 or float images in 0..255.

    Plain forward calls in chunks, not model.predict: they also work on a model trained under
    a distribution strategy, where Keras' predict fails on a last batch that does not split evenly.
    """
    return np.concatenate([
        keras.ops.convert_to_numpy(model(images[i:i + batch_size].astype(np.float32), training=False))
        for i in range(0, len(images), batch_size)]) if len(images) else np.zeros((0, model.output_shape[-1]))


def tta_probabilities(model, images, shift=2, batch_size=256):
    """Mean probabilities over 10 views: the image and 4 shifted copies, each also mirrored."""
    padded = np.pad(images, ((0, 0), (shift, shift), (shift, shift), (0, 0)), mode="reflect")
    size = images.shape[1]
    views = [images] + [padded[:, shift + dy:shift + dy + size, shift + dx:shift + dx + size]
                        for dy, dx in ((-shift, 0), (shift, 0), (0, -shift), (0, shift))]
    views += [view[:, :, ::-1] for view in views]
    return np.mean([predict_probabilities(model, view, batch_size) for view in views], axis=0)


def ensemble_probabilities(models, images, tta=False):
    """Mean probabilities of several models on the same faces (an ensemble), each over 10 views with tta."""
    predict = tta_probabilities if tta else predict_probabilities
    return np.mean([predict(model, images) for model in models], axis=0)


def ensemble_function(models, mirror=False):
    """f(images) -> (N, 7) float32: what ensemble_probabilities computes, in one compiled call; with
    `mirror`, the mean over each image and its mirror image too (twice the work).

    Consistent teaching calls the teachers on every training batch. Called eagerly, Keras dispatches
    each layer of each teacher from Python; traced once into one TensorFlow graph (the batch size left
    open), three teachers answered a batch of 64 1.4x as fast (436 against 605 ms on two cores beside a
    training run; bench/train_throughput.py --teachers). The live classifier's Keras engine calls it
    with its one model (classify.py). Other backends get the eager mean.
    """
    if keras.backend.backend() != "tensorflow":
        def eager(images):
            views = (images, np.asarray(images)[:, :, ::-1]) if mirror else (images,)
            return np.mean([ensemble_probabilities(models, view) for view in views], axis=0).astype(np.float32)
        return eager
    import tensorflow as tf

    def mean(x):  # over every model and view alike; width is axis 2
        views = (x, tf.reverse(x, axis=[2])) if mirror else (x,)
        return tf.reduce_mean(tf.stack([m(view, training=False) for m in models for view in views]), axis=0)

    spec = tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 1], tf.float32)
    call = tf.function(mean, input_signature=[spec], reduce_retracing=True)
    return lambda images: call(np.asarray(images, np.float32)).numpy().astype(np.float32)
