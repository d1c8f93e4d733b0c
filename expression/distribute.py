"""Data-parallel training with the backend's own engine: a model copy per device, each batch split.

- TensorFlow: tf.distribute.MirroredStrategy over the GPUs, or over the logical CPU devices
  when there is no GPU; MultiWorkerMirroredStrategy when TF_CONFIG describes several hosts.
- JAX: keras.distribution.DataParallel over JAX's devices; with several hosts, each process
  first joins through keras.distribution.initialize() (KERAS_DISTRIBUTION_* variables).
The model must be built, trained and saved inside the returned scope.
"""
import os

import keras


def data_parallel():
    """(scope, device names) for training one model data-parallel on every device here."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        if "TF_CONFIG" in os.environ:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
            return strategy.scope(), [f"{strategy.num_replicas_in_sync} replicas across hosts"]
        devices = [d.name for d in tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices).scope(), devices
    if backend == "jax":
        if "KERAS_DISTRIBUTION_JOB_ADDRESSES" in os.environ:
            keras.distribution.initialize()
        devices = keras.distribution.list_devices()
        return keras.distribution.DataParallel(devices=devices).scope(), devices
    raise RuntimeError(f"--distribute supports the tensorflow and jax backends, not {backend}")
