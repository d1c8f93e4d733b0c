"""The OpenCV export: the contrast-standardising input runs in numpy, and the cached export is
used only while it matches the model files, without TensorFlow."""
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import MODELS, ROOT
from expression.classify import EmotionClassifier
from expression.export import GRAPH, META, load_cache, opencv_net, save_cache
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


@pytest.fixture
def model_folder(tmp_path):
    model = with_trained_statistics(build_model(width=4, convs=(1, 1, 1, 1), normalize=True))
    save_model(model, tmp_path)
    return tmp_path, model


def test_the_cache_is_used_only_while_it_matches_the_weights(model_folder):
    folder, model = model_folder
    assert load_cache(folder) is None  # nothing cached yet
    assert save_cache(opencv_net(model), folder)
    cached = load_cache(folder)
    np.testing.assert_allclose(EmotionClassifier(net=cached).probabilities(faces()), model.predict(faces(), verbose=0),
                               atol=1e-5)
    retrained = with_trained_statistics(build_model(width=4, convs=(1, 1, 1, 1), normalize=True), seed=7)
    save_model(retrained, folder)  # new weights: the export is stale and must not be used
    assert load_cache(folder) is None


def test_a_broken_cache_is_ignored(model_folder):
    folder, model = model_folder
    save_cache(opencv_net(model), folder)
    (folder / GRAPH).write_bytes(b"not a graph")
    assert load_cache(folder) is None
    (folder / META).write_text("{")
    assert load_cache(folder) is None


def test_a_cached_export_classifies_without_importing_tensorflow(tmp_path):
    folder = tmp_path / "models"
    shutil.copytree(MODELS, folder, ignore=shutil.ignore_patterns("emotion.opencv.*"))
    model, _ = load_model_folder(folder)
    assert save_cache(opencv_net(model), folder)
    expected = model.predict(faces(2), verbose=0)
    code = ("import sys, numpy as np; from expression.export import load_cache; "
            "from expression.classify import EmotionClassifier; "
            f"x = np.random.default_rng(0).uniform(0, 255, (2, 48, 48, 1)).astype(np.float32); "
            f"p = EmotionClassifier(net=load_cache({str(folder)!r})).probabilities(x); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'; "
            "print(' '.join(map(repr, p.ravel().tolist())))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(np.array(result.stdout.split(), float).reshape(2, 7), expected, atol=1e-5)
