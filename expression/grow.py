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
"""
import keras
import numpy as np


def grow(trained, grown, images, seed=0, sample=2048, batch_size=256):
    """Copy `trained`'s weights into `grown` by layer name; layers only `grown` has become identity.

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
    for layer in layers:
        if layer.name in known:
            old = known[layer.name].get_weights()
            if [w.shape for w in old] != [w.shape for w in layer.get_weights()]:
                raise ValueError(f"layer {layer.name} has other shapes in the trained net")
            layer.set_weights(old)
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
        probe = keras.Model(grown.inputs[0], conv.input)
        saved = [v.numpy() for v in grown.non_trainable_variables]  # training calls move BN's averages
        features = np.concatenate([keras.ops.convert_to_numpy(probe(images[j:j + batch_size].astype(np.float32),
                                                                    training=True))
                                   for j in range(0, len(images), batch_size)])
        for variable, value in zip(grown.non_trainable_variables, saved):
            variable.assign(value)
        mean = features.mean(axis=(0, 1, 2))
        var = features.var(axis=(0, 1, 2))
        bn.set_weights([np.sqrt(var + bn.epsilon), mean, mean, var])  # gamma, beta, moving mean, moving var
    unmatched = [layers[i].name for i in new
                 if not isinstance(layers[i], (keras.layers.Conv2D, keras.layers.BatchNormalization))]
    if unmatched:
        raise ValueError(f"layer(s) {', '.join(unmatched)} are not in the trained net and are not conv blocks")
