"""average.py and expression/average.py: the weights of several nets averaged into one."""
import json

import keras
import numpy as np
import pytest

from conftest import assert_clean_error, run_script
from expression.average import average_weights
from expression.model import build_model
from expression.model_files import save_model


def random_net(seed, convs=(1, 1, 1, 2), width=8):
    keras.utils.set_random_seed(seed)
    model = build_model(width, convs, 0.2, normalize=True)
    rng = np.random.default_rng(seed)
    for layer in model.layers:  # BatchNorm statistics away from 0 and 1, as after training
        weights = layer.get_weights()
        if len(weights) == 4:
            layer.set_weights([weights[0], weights[1], rng.normal(0, 1, weights[2].shape).astype(np.float32),
                               rng.uniform(0.5, 2, weights[3].shape).astype(np.float32)])
    return model


def test_every_weight_is_the_share_weighted_mean():
    a, b = random_net(0), random_net(1)
    mixed = average_weights([a, b], [1, 3])  # shares are scaled to 0.25 and 0.75
    for got, x, y in zip(mixed, a.get_weights(), b.get_weights()):
        assert got.dtype == x.dtype
        np.testing.assert_allclose(got, 0.25 * x + 0.75 * y, rtol=1e-6, atol=1e-7)
    assert any(np.abs(x - y).max() > 1e-2 for x, y in zip(a.get_weights(), b.get_weights()))  # the nets differ
    equal = average_weights([a, b])
    np.testing.assert_allclose(equal[-1], (a.get_weights()[-1] + b.get_weights()[-1]) / 2, rtol=1e-6)


def test_a_net_averaged_with_itself_predicts_the_same():
    net = random_net(2)
    faces = np.random.default_rng(0).integers(0, 256, (8, 48, 48, 1)).astype(np.float32)
    before = net(faces, training=False).numpy()
    net.set_weights(average_weights([net, net, net], [0.2, 0.3, 0.5]))
    np.testing.assert_allclose(net(faces, training=False).numpy(), before, atol=1e-5)


@pytest.mark.parametrize("other, words", [(dict(convs=(1, 1, 2, 2)), "conv3_2"), (dict(width=16), "conv1_1")])
def test_nets_that_do_not_line_up_are_refused(other, words):
    with pytest.raises(ValueError, match=words):
        average_weights([random_net(0), random_net(1, **other)])


def test_bad_shares_are_refused():
    with pytest.raises(ValueError, match="share"):
        average_weights([random_net(0), random_net(1)], [1, -1])


def test_average_py_writes_a_plain_keras_model_of_the_mean(tmp_path):
    a, b = random_net(0), random_net(1)
    save_model(a, tmp_path / "a")
    save_model(b, tmp_path / "b")
    result = run_script("average.py", tmp_path / "a", tmp_path / "b", "--shares", "0.3", "0.7",
                        "--out", tmp_path / "soup")
    assert result.returncode == 0, result.stderr
    assert "evaluate.py --model" in result.stdout
    soup = keras.models.model_from_json((tmp_path / "soup" / "emotion.json").read_text())
    soup.load_weights(tmp_path / "soup" / "emotion.weights.h5")
    for got, x, y in zip(soup.get_weights(), a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(got, 0.3 * x + 0.7 * y, rtol=1e-5, atol=1e-6)
    assert json.loads((tmp_path / "soup" / "labels.json").read_text())["labels"][0] == "angry"


@pytest.mark.parametrize("case", ["one_model", "missing_model", "mismatch", "share_count", "negative_share",
                                  "out_holds_model", "labels_differ", "out_not_writable"])
def test_bad_input_is_one_clear_line(case, tmp_path):
    save_model(random_net(0), tmp_path / "a")
    save_model(random_net(1), tmp_path / "b")
    models = [tmp_path / "a", tmp_path / "b"]
    out = tmp_path / "soup"
    extra = []
    if case == "one_model":
        models, expect = models[:1], ["two or more"]
    elif case == "missing_model":
        models, expect = [tmp_path / "a", tmp_path / "nowhere"], ["nowhere", "not found"]
    elif case == "mismatch":
        save_model(random_net(1, convs=(1, 1, 2, 2)), tmp_path / "b")
        expect = ["cannot average", "conv3_2", "--grow-from"]
    elif case == "share_count":
        extra, expect = ["--shares", "1"], ["--shares", "one non-negative share per model"]
    elif case == "negative_share":
        extra, expect = ["--shares", "1", "-1"], ["--shares", "non-negative"]
    elif case == "out_holds_model":
        out, expect = tmp_path / "a", ["already holds a model", "--overwrite"]
    elif case == "labels_differ":
        labels = tmp_path / "b" / "labels.json"
        labels.write_text(json.dumps({"labels": sorted(json.loads(labels.read_text())["labels"])}))
        expect = ["labels.json", "same classes"]
    else:
        out.write_text("a file, not a folder")
        expect = ["cannot write", "--out"]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert_clean_error(run_script("average.py", *models, "--out", out, *extra), *expect)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written, nothing half-written
