"""Average the weights of trained nets of one architecture into one net: a model soup.

Nets that start from the same weights (a rerun of a schedule, a fine-tune and the net it began
from) end in one basin of the loss, where the mean of their weights is itself a good net, as
fast live as each of them (Wortsman et al. 2022, "Model soups"; between a fine-tune and its
start, "WiSE-FT"). On this project such blends of a fine-tune with its start kept about a point
more of realfaces_dev for a few tenths of val (docs/experiments.md, #18 and #21).

Every weight is averaged, BatchNorm's moving mean and variance too, layer by layer and by name.
"""
import numpy as np


def average_weights(models, shares=None):
    """The share-weighted mean of each weight of `models`, for models[0].set_weights.

    shares: one non-negative number per model (they are scaled to sum to 1); equal by default.
    Raises ValueError naming the first layer where the nets do not line up.
    """
    shares = normalized_shares(shares, len(models))
    layout = _layout(models[0])
    for other in models[1:]:
        theirs = _layout(other)
        for ours, their in zip(layout, theirs):
            if ours != their:
                raise ValueError(f"layer {ours[0]} has other weights than {their[0]} of another net")
        if len(layout) != len(theirs):
            raise ValueError(f"the nets have {len(layout)} and {len(theirs)} layers with weights")
    per_model = [model.get_weights() for model in models]
    return [sum(share * weights[i].astype(np.float64) for share, weights in zip(shares, per_model))
            .astype(per_model[0][i].dtype) for i in range(len(per_model[0]))]


def normalized_shares(shares, count):
    """`shares` (None: equal) scaled to sum to 1; ValueError unless one non-negative share per model."""
    shares = np.ones(count) if shares is None else np.asarray(shares, np.float64)
    if len(shares) != count or np.any(shares < 0) or shares.sum() <= 0:
        raise ValueError("give one non-negative share per model, not all zero")
    return shares / shares.sum()


def _layout(model):
    """(name, weight shapes) of each layer that has weights; the shapes are read without copying them."""
    return [(layer.name, [tuple(w.shape) for w in layer.weights]) for layer in model.layers if layer.weights]
