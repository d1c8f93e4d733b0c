"""Grow a trained net deeper without forgetting it: extra 3x3 convs that start as the identity.

A fine-tune of a deeper net (train.py --convs 1122 --grow-from models) starts from what
the trained one knows instead of from random weights, which on two CPU cores is the
difference between an hour and a day. Each added block (conv + BatchNorm + ReLU) is made
to pass its input through unchanged:
- the conv's kernel is 1 at the centre tap from each channel to itself, 0 elsewhere;
- BatchNorm's moving mean and variance are the channel statistics of the block's input on
  training batches of faces, and its scale and shift undo them, so BN is the identity
  at inference and nearly so on a training batch;
- ReLU passes it unchanged, as its input is the previous ReLU's output, never negative.
So the grown net starts with the trained net's accuracy, and training then uses the new layers.

The dense head can grow wider too (train.py --dense 512 --grow-from models): the trained units
keep their weights, the new units get fresh incoming weights and BatchNorm statistics of their
own input, and their outgoing weights start at zero, so they change nothing until training
gives them a say. The head is under 1% of the net's work, so a wider one costs no live time.

A net with another head (train.py --head gap --grow-from models) keeps the trained convs, and its
head (the dense layers after the pooling) starts fresh: that one is not the trained net until
training has taught the new head, but it starts from features learnt over many epochs.
"""
import keras
import numpy as np


def grow(trained, grown, images, seed=0, sample=2048, batch_size=256):
    """Copy `trained`'s weights into `grown` by layer name; layers only `grown` has become identity, and
    units only `grown`'s dense head has start with zero outgoing weights. Where the two heads differ
    (head_of), the head's layers keep their fresh weights, with BatchNorm statistics of their input.

    images: training faces (uint8 or float 0..255, (N, 48, 48, 1)); a seeded random `sample`
    of them gives the BatchNorm statistics. Raises ValueError when the two nets do not line up.
    """
    images = images[np.random.default_rng(seed).permutation(len(images))[:sample]]
    known = {layer.name: layer for layer in trained.layers}
    layers = grown.layers
    # Growing only adds: a trained layer with weights that the grown net lacks would be dropped
    # without a word (a 1222 net "grown" into 1122 would lose its second 24x24 conv).
    names = {layer.name for layer in layers}
    dropped = [name for name, layer in known.items() if layer.get_weights() and name not in names]
    if dropped:
        raise ValueError(f"layer(s) {', '.join(dropped)} of the trained net have no place in the grown one: "
                         "it has fewer convs")
    trained_units = {}  # BatchNorm -> how many of its units (the leading ones) the trained net had
    fresh_head = head_layers(grown) if head_of(trained) != head_of(grown) else []
    for layer in layers:
        if layer in fresh_head:
            if isinstance(layer, keras.layers.BatchNormalization):
                trained_units[layer] = 0  # all its units are new
            continue
        if layer.name in known:
            old, fresh = known[layer.name].get_weights(), layer.get_weights()
            if [w.shape for w in old] == [w.shape for w in fresh]:
                layer.set_weights(old)
            elif widens(layer, old, fresh):
                layer.set_weights(widen(old, fresh))
                if isinstance(layer, keras.layers.BatchNormalization):
                    trained_units[layer] = len(old[0])
            else:
                raise ValueError(f"layer {layer.name} has other shapes in the trained net")
    new = [i for i, layer in enumerate(layers) if layer.name not in known and layer.get_weights()]
    for i in new:
        conv = layers[i]
        if not isinstance(conv, keras.layers.Conv2D):
            continue
        bn = layers[i + 1]
        if (not isinstance(bn, keras.layers.BatchNormalization) or bn.name in known
                or conv.kernel.shape[2] != conv.kernel.shape[3]):
            raise ValueError(f"layer {conv.name} is not an added conv block with as many filters as its input")
        kernel = np.zeros(conv.kernel.shape, np.float32)
        centre = kernel.shape[0] // 2, kernel.shape[1] // 2
        kernel[centre[0], centre[1]] = np.eye(kernel.shape[2], dtype=np.float32)
        conv.kernel.assign(kernel)
        # The statistics of what enters the block, through the net grown so far, as a training
        # batch sees it (earlier BatchNorms on batch statistics). Any statistics make the block
        # the identity at inference; these also make it so in training.
        mean, var = input_statistics(grown, conv, images, batch_size)
        bn.set_weights([np.sqrt(var + bn.epsilon), mean, mean, var])  # gamma, beta, moving mean, moving var
    unmatched = [layers[i].name for i in new
                 if not isinstance(layers[i], (keras.layers.Conv2D, keras.layers.BatchNormalization))]
    if unmatched:
        raise ValueError(f"layer(s) {', '.join(unmatched)} are not in the trained net and are not conv blocks")
    for bn, n in trained_units.items():
        # The new units' moving statistics: those of their own input on training batches, so they
        # start normalised at inference as in training (a widened head's new units also pass nothing on yet).
        gamma, beta, mean, var = bn.get_weights()
        seen_mean, seen_var = input_statistics(grown, bn, images, batch_size)
        mean[n:], var[n:] = seen_mean[n:], seen_var[n:]
        bn.set_weights([gamma, beta, mean, var])


def head_of(model):
    """"gap" for a net whose convs end in global average pooling, else "flatten" (model.build_model's heads)."""
    return "gap" if any(isinstance(layer, keras.layers.GlobalAveragePooling2D) for layer in model.layers) else "flatten"


def head_layers(model):
    """The layers after the last conv stage's pooling: the dense head."""
    pools = [i for i, layer in enumerate(model.layers)
             if isinstance(layer, (keras.layers.GlobalAveragePooling2D, keras.layers.Flatten))]
    return model.layers[pools[-1] + 1:] if pools else []


def widens(layer, old, fresh):
    """Whether `layer` is a dense layer or BatchNorm that only gained units over the trained one's weights."""
    return (isinstance(layer, (keras.layers.Dense, keras.layers.BatchNormalization)) and len(old) == len(fresh)
            and all(o.ndim == f.ndim and all(a <= b for a, b in zip(o.shape, f.shape)) for o, f in zip(old, fresh)))


def widen(old, fresh):
    """The trained weights in the leading corner of the fresh ones. A dense kernel's (the only 2-D weight
    here) rows for new inputs are zero, so the units added before it pass nothing on; its columns for
    new units keep their fresh initial weights."""
    out = []
    for o, f in zip(old, fresh):
        w = f.copy()
        if w.ndim == 2:
            w[o.shape[0]:] = 0
        w[tuple(slice(0, n) for n in o.shape)] = o
        out.append(w)
    return out


def input_statistics(grown, layer, images, batch_size):
    """Per-channel mean and variance of what enters `layer` on `images`, through the net grown so far as a
    training batch sees it (BatchNorms on batch statistics, dropout on). BN's moving averages are put back."""
    probe = keras.Model(grown.inputs[0], layer.input)
    saved = [v.numpy() for v in grown.non_trainable_variables]  # training calls move BN's averages
    features = np.concatenate([keras.ops.convert_to_numpy(probe(images[j:j + batch_size].astype(np.float32),
                                                                training=True))
                               for j in range(0, len(images), batch_size)])
    for variable, value in zip(grown.non_trainable_variables, saved):
        variable.assign(value)
    axes = tuple(range(features.ndim - 1))
    return features.mean(axis=axes), features.var(axis=axes)
