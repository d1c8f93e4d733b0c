"""grow.py: a deeper net grown from a trained one starts with exactly its predictions."""
import keras
import numpy as np
import pytest

from expression.grow import grow
from expression.model import build_model, predict_probabilities


def trained_like(model, rng):
    """Random weights with BatchNorm statistics far from 0 and 1, as after training."""
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            new = [rng.normal(0, 0.3, w.shape).astype(np.float32) for w in weights]
            if len(weights) == 4:  # BatchNorm: gamma, beta, moving mean, positive moving variance
                new[3] = rng.uniform(0.5, 2.0, weights[3].shape).astype(np.float32)
            layer.set_weights(new)
    return model


@pytest.mark.parametrize("convs", [(1, 1, 2, 2), (2, 2, 2, 3)])
def test_grown_net_predicts_what_the_trained_one_did(convs):
    rng = np.random.default_rng(0)
    small = trained_like(build_model(8, (1, 1, 1, 2), 0.2, normalize=True), rng)
    big = build_model(8, convs, 0.2, normalize=True)
    faces = rng.integers(0, 256, (64, 48, 48, 1)).astype(np.uint8)
    before = predict_probabilities(big, faces)
    grow(small, big, faces)
    expected = predict_probabilities(small, faces)
    assert np.abs(predict_probabilities(big, faces) - expected).max() < 1e-4
    assert np.abs(before - expected).max() > 1e-2  # the check can fail: an ungrown net predicts otherwise
    assert big.count_params() > small.count_params()


def test_grown_blocks_pass_a_training_batch_through_unchanged():
    """In training BatchNorm uses the batch's statistics: the added blocks must undo those too."""
    rng = np.random.default_rng(1)
    small = trained_like(build_model(8, (1, 1, 1, 2), 0.0, normalize=True), rng)
    big = build_model(8, (1, 1, 2, 2), 0.0, normalize=True)
    faces = rng.integers(0, 256, (64, 48, 48, 1)).astype(np.float32)
    grow(small, big, faces)
    expected = small(faces, training=True).numpy()
    assert np.abs(big(faces, training=True).numpy() - expected).max() < 1e-3


def test_nets_that_do_not_line_up_are_refused():
    small = build_model(8, (1, 1, 1, 2), 0.2, normalize=True)
    faces = np.zeros((4, 48, 48, 1), np.uint8)
    with pytest.raises(ValueError, match="other shapes"):
        grow(small, build_model(16, (1, 1, 2, 2), 0.2, normalize=True), faces)


def test_a_deeper_trained_net_is_refused_not_cut_down():
    """Growing into fewer convs would drop trained layers silently; it must say so instead."""
    deep = build_model(8, (1, 1, 2, 2), 0.2, normalize=True)
    faces = np.zeros((4, 48, 48, 1), np.uint8)
    with pytest.raises(ValueError, match="conv3_2, bn3_2, conv4_2, bn4_2 of the trained net .* fewer convs"):
        grow(deep, build_model(8, (1, 1, 1, 1), 0.2, normalize=True), faces)


def test_a_wider_dense_head_predicts_what_the_trained_one_did():
    """--dense 128 --grow-from a 64-unit net: the trained units keep their weights, the new ones start silent
    but alive (fresh incoming weights, BatchNorm statistics of their own input)."""
    # The statistics are taken in training mode, dropout on, and the fresh incoming weights are Keras'
    # random draws: seeded, so the check below does not depend on which tests ran before this one
    # (on this random net's 256 faces the mean's offset ranged -0.28..0.15 over eight seeds).
    keras.utils.set_random_seed(2)
    rng = np.random.default_rng(2)
    small = trained_like(build_model(8, (1, 1, 1, 2), 0.2, normalize=True), rng)
    wide = build_model(8, (1, 1, 2, 2), 0.2, normalize=True, dense=128)
    faces = rng.integers(0, 256, (256, 48, 48, 1)).astype(np.uint8)
    grow(small, wide, faces)
    expected = predict_probabilities(small, faces)
    assert np.abs(predict_probabilities(wide, faces) - expected).max() < 1e-4
    kernel = wide.get_layer("dense").get_weights()[0]
    assert np.array_equal(kernel[:, :64], small.get_layer("dense").get_weights()[0])
    assert np.abs(kernel[:, 64:]).max() > 0  # new units see the features ...
    assert not wide.get_layer("emotion").get_weights()[0][64:].any()  # ... and pass nothing on yet
    # Their BatchNorm centres and scales what they see: at inference their normalised input is about 0 +- 1.
    probe = keras.Model(wide.inputs[0], wide.get_layer("bn_dense").output)
    new_units = probe(faces.astype(np.float32), training=False).numpy()[:, 64:]
    assert abs(new_units.mean()) < 0.2 and 0.5 < new_units.std() < 1.5


def test_a_narrower_dense_head_is_refused():
    wide = build_model(8, (1, 1, 1, 2), 0.2, normalize=True, dense=128)
    faces = np.zeros((4, 48, 48, 1), np.uint8)
    with pytest.raises(ValueError, match="dense has other shapes"):
        grow(wide, build_model(8, (1, 1, 1, 2), 0.2, normalize=True, dense=64), faces)


def test_a_new_head_keeps_the_trained_convs_and_starts_its_own_layers_fresh():
    rng = np.random.default_rng(3)
    small = trained_like(build_model(8, (1, 1, 1, 2), 0.2, normalize=True), rng)
    gap = build_model(8, (1, 1, 1, 2), 0.2, normalize=True, head="gap")
    fresh = {layer.name: layer.get_weights() for layer in gap.layers}
    faces = rng.integers(0, 256, (64, 48, 48, 1)).astype(np.uint8)
    grow(small, gap, faces)
    trained = {layer.name: layer.get_weights() for layer in small.layers}
    for layer in gap.layers:
        if layer.name.startswith(("conv", "bn")) and layer.name != "bn_dense":
            for new, old in zip(layer.get_weights(), trained[layer.name]):
                np.testing.assert_array_equal(new, old)  # the convs and their BatchNorms: the trained ones
    np.testing.assert_array_equal(gap.get_layer("dense").get_weights()[0], fresh["dense"][0])
    np.testing.assert_array_equal(gap.get_layer("emotion").get_weights()[0], fresh["emotion"][0])
    # The head's BatchNorm is normalised on what now enters it, not left at mean 0 and variance 1.
    _, _, mean, var = gap.get_layer("bn_dense").get_weights()
    assert np.abs(mean).max() > 1e-3 and np.abs(var - 1).max() > 1e-3
    # And back: a flatten head grown from a gap net starts fresh in the same way.
    flat = build_model(8, (1, 1, 1, 2), 0.2, normalize=True)
    grow(gap, flat, faces)
    np.testing.assert_array_equal(flat.get_layer("conv4_2").get_weights()[0], gap.get_layer("conv4_2").get_weights()[0])
