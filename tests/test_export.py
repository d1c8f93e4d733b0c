"""The net for OpenCV, built from the model files: Keras' probabilities, the contrast-standardising input
in numpy, and no TensorFlow on the way."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import MODELS, ROOT
from expression.classify import EmotionClassifier
from expression.export import net_from_files, opencv_net
from expression.model import build_model
from expression.model_files import load_model_folder, save_model
from test_classify import faces, with_trained_statistics


def test_a_contrast_standardising_model_runs_on_opencv_with_plain_keras_probabilities():
    model = with_trained_statistics(build_model(width=4, convs=(1, 1, 1, 1), normalize=True))
    classifier = EmotionClassifier(model)
    assert classifier.engine == "opencv"
    x = faces()
    x[0] = 128.0  # a flat crop: the epsilon decides, as in Keras
    x[1] = x[1] * 0.2 + 30  # a dark, low-contrast crop: standardised like any other
    np.testing.assert_allclose(classifier.probabilities(x), model.predict(x, verbose=0), atol=1e-5)


def test_standardising_makes_brightness_and_contrast_irrelevant():
    model = with_trained_statistics(build_model(width=4, convs=(1, 1, 1, 1), normalize=True))
    x = faces(3)
    darker = x * 0.5 + 20
    # (equal up to the epsilon under the variance, which weighs 4x more on the darker copy)
    np.testing.assert_allclose(model.predict(darker, verbose=0), model.predict(x, verbose=0), atol=1e-3)


@pytest.fixture(params=["flatten", "gap"])
def model_folder(tmp_path, request):
    model = with_trained_statistics(build_model(width=4, convs=(1, 1, 1, 1), normalize=True, head=request.param))
    save_model(model, tmp_path)
    return tmp_path, model


def test_the_net_built_from_the_files_gives_keras_probabilities(model_folder):
    folder, model = model_folder
    net = net_from_files(folder / "emotion.json", folder / "emotion.weights.h5")
    assert net is not None
    np.testing.assert_allclose(EmotionClassifier(net=net).probabilities(faces()), model.predict(faces(), verbose=0),
                               atol=1e-5)


@pytest.mark.parametrize("convs,padding", [((1, 1, 1, 1), "same"), ((2, 1, 1, 1), "valid")])
def test_every_layout_the_builder_folds_matches_keras(convs, padding):
    """Two convs in a stage and 'valid' padding: the NCHW reordering of the flattened rows must follow."""
    import keras

    config = json.loads(build_model(width=4, convs=convs, normalize=False).to_json())
    for layer in config["config"]["layers"]:
        layer.pop("build_config", None)  # shapes change with the padding: let Keras work them out again
        if layer["class_name"] == "Conv2D":
            layer["config"]["padding"] = padding
    model = with_trained_statistics(keras.models.model_from_json(json.dumps(config)))
    net = opencv_net(model)
    assert net is not None
    np.testing.assert_allclose(net(faces()), model.predict(faces(), verbose=0), atol=1e-5)


def test_a_layer_the_builder_cannot_fold_means_no_net_and_the_caller_uses_keras(model_folder):
    folder, _ = model_folder
    config = json.loads((folder / "emotion.json").read_text())
    conv = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Conv2D")
    conv["config"]["dilation_rate"] = [2, 2]
    (folder / "emotion.json").write_text(json.dumps(config))
    assert net_from_files(folder / "emotion.json", folder / "emotion.weights.h5") is None
    (folder / "emotion.weights.h5").write_bytes(b"not weights")
    assert net_from_files(folder / "emotion.json", folder / "emotion.weights.h5") is None


def test_the_bundled_model_classifies_without_importing_tensorflow():
    model, _ = load_model_folder(MODELS)
    expected = model.predict(faces(2), verbose=0)
    code = ("import sys, numpy as np; from expression.startup import load_classifier; "
            "x = np.random.default_rng(0).uniform(0, 255, (2, 48, 48, 1)).astype(np.float32); "
            f"classifier, labels = load_classifier({str(MODELS)!r}); p = classifier.probabilities(x); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'; "
            "print(' '.join(map(repr, p.ravel().tolist())))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(np.array(result.stdout.split(), float).reshape(2, 7), expected, atol=1e-5)
