"""The live classifier: OpenCV's DNN engine gives plain Keras' probabilities, or Keras runs instead."""
import keras
import numpy as np
import pytest
from keras import layers

from conftest import MODELS
from expression.classify import EmotionClassifier, crop_faces
from expression.model import build_model
from expression.model_files import load_model


def faces(count=9, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, 48, 48, 1)).astype(np.float32)


def with_trained_statistics(model, seed=1):
    """Random BatchNorm statistics and affine terms, so that folding them is really tested."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            shape = layer.moving_mean.shape
            layer.moving_mean.assign(rng.normal(0, 0.5, shape))
            layer.moving_variance.assign(rng.uniform(0.3, 3, shape))
            if layer.scale:
                layer.gamma.assign(rng.uniform(0.5, 1.5, shape))
            if layer.center:
                layer.beta.assign(rng.normal(0, 0.3, shape))
    return model


def test_bundled_model_on_opencv_gives_plain_keras_probabilities():
    model, _ = load_model(MODELS / "emotion.json", MODELS / "emotion.weights.h5", MODELS / "labels.json")
    classifier = EmotionClassifier(model)
    assert classifier.engine == "opencv"
    x = faces()
    for count in (1, 2, 9):  # any batch size
        np.testing.assert_allclose(classifier.probabilities(x[:count]), model.predict(x[:count], verbose=0), atol=1e-5)
    assert classifier.probabilities(x[:0]).shape == (0, 7)


def test_folding_keeps_every_layer_variant_exact():
    model = keras.Sequential([
        keras.Input((48, 48, 1)), layers.Rescaling(1 / 255),
        layers.Conv2D(6, 3, padding="same", use_bias=True), layers.BatchNormalization(), layers.ReLU(),
        layers.MaxPooling2D(3, strides=2, padding="same"),
        layers.Conv2D(8, 5, strides=2, padding="valid", activation="relu"), layers.MaxPooling2D(),
        layers.Flatten(), layers.Dropout(0.5), layers.Dense(16, use_bias=False), layers.BatchNormalization(center=False),
        layers.ReLU(), layers.Dense(7, activation="softmax")])
    for model in (with_trained_statistics(model), with_trained_statistics(build_model(width=4, convs=(2, 1, 1, 1))),
                  with_trained_statistics(build_model(width=4, convs=(1, 1, 1, 2), head="gap"))):
        classifier = EmotionClassifier(model)
        assert classifier.engine == "opencv"
        np.testing.assert_allclose(classifier.probabilities(faces()), model.predict(faces(), verbose=0), atol=1e-5)


@pytest.mark.parametrize("odd_layer", [layers.LeakyReLU(0.1), layers.GlobalMaxPooling2D(), layers.Rescaling(1, offset=-0.5)])
def test_a_layer_opencv_cannot_take_falls_back_to_keras(odd_layer):
    flatten = [] if isinstance(odd_layer, layers.GlobalMaxPooling2D) else [layers.Flatten()]
    model = keras.Sequential([keras.Input((48, 48, 1)), layers.Conv2D(4, 3), odd_layer, *flatten,
                              layers.Dense(7, activation="softmax")])
    classifier = EmotionClassifier(model)
    assert classifier.engine == "keras"
    np.testing.assert_allclose(classifier.probabilities(faces()), model.predict(faces(), verbose=0), atol=1e-5)
    with pytest.raises(ValueError, match="OpenCV"):
        EmotionClassifier(model, engine="opencv")


def test_crops_grow_by_the_margin_and_stay_inside_the_frame():
    gray = np.zeros((100, 100), np.uint8)
    gray[40:60, 40:60] = 200
    crop = crop_faces(gray, [(40, 40, 20, 20)], margin=0.5)[0, :, :, 0]  # 30x30 around the square
    assert crop[24, 24] == 200 and crop[2, 2] == 0
    edge = crop_faces(gray, [(-10, 90, 30, 30)])  # partly outside: cropped to the frame, no error
    assert edge.shape == (1, 48, 48, 1)


def test_a_negative_margin_trims_the_box():
    gray = np.zeros((100, 100), np.uint8)
    gray[45:55, 45:55] = 255  # a bright 10x10 square in the middle of a 20x20 box
    crop = crop_faces(gray, [(40, 40, 20, 20)], margin=-0.25)[0, :, :, 0]  # the centre 10x10 only
    assert crop.min() == 255


def test_the_live_crop_margin_is_the_one_everything_uses():
    import inspect
    import realtime
    from expression.classify import MARGIN
    from expression.live import LivePipeline
    from expression.recognizer import EmotionRecognizer
    assert realtime.parse_args([]).margin == MARGIN
    for function in (LivePipeline.__init__, EmotionRecognizer.__init__, crop_faces):
        assert inspect.signature(function).parameters["margin"].default == MARGIN, function
