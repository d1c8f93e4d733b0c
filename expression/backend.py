"""Keras' backend (KERAS_BACKEND): a one-line reason, instead of a traceback, when it cannot load."""
import importlib
import os


def backend_problem():
    """None when Keras imports; otherwise a message naming the backend and the fix."""
    try:
        importlib.import_module("keras")  # Keras loads its backend on import
    except ImportError as error:  # the backend's package is not installed
        name = os.environ.get("KERAS_BACKEND", "tensorflow")
        return (f"Keras cannot load its '{name}' backend ({error}); install it (pip install {name}) "
                "or unset KERAS_BACKEND to use TensorFlow")
    except ValueError as error:  # a backend name Keras does not know
        return (f"Keras has no backend '{os.environ.get('KERAS_BACKEND')}' ({error}); set KERAS_BACKEND "
                "to tensorflow or jax, or unset it")
    return None
