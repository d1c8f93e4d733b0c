"""Keras' backend (KERAS_BACKEND): a one-line reason, instead of a traceback, when it cannot load,
and TensorFlow's native start-up lines kept off the terminal while it loads."""
import importlib
import os
import re
import sys
import tempfile
from contextlib import contextmanager

# Lines that TensorFlow's C++ libraries print while they load, through Abseil before logging is set up,
# so TF_CPP_MIN_LOG_LEVEL does not reach them ("Could not find cuda drivers", "cuInit", "oneDNN").
# Abseil's "I0000 00:00:1795603920.587589    5594 cudart_stub.cc:31] ..." (its seconds may be a whole
# timestamp), or older TensorFlow's "2019-08-26 11:45:17.907378: I tensorflow/.../dso_loader.cc:44] ...".
NATIVE_LOG = re.compile(r"^(?:([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ "
                        r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IWEF]) )\S+:\d+\] ")
ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def backend_problem():
    """None when Keras imports; otherwise a message naming the backend and the fix.

    TensorFlow's libraries print CUDA and oneDNN notes as they load and when they first look for
    devices; both happen here, inside quiet_native_logs, so the scripts' output starts clean.
    """
    try:
        with quiet_native_logs():
            keras = importlib.import_module("keras")  # Keras loads its backend on import
            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf
                tf.config.list_physical_devices()  # CUDA's probe, and its "cuInit" line, happen now
    except ImportError as error:  # the backend's package is not installed
        name = os.environ.get("KERAS_BACKEND", "tensorflow")
        return (f"Keras cannot load its '{name}' backend ({error}); install it (pip install {name}) "
                "or unset KERAS_BACKEND to use TensorFlow")
    except ValueError as error:  # a backend name Keras does not know
        return (f"Keras has no backend '{os.environ.get('KERAS_BACKEND')}' ({error}); set KERAS_BACKEND "
                "to tensorflow or jax, or unset it")
    return None


@contextmanager
def quiet_native_logs():
    """Hold back what native code writes to stderr meanwhile; then pass it on without TensorFlow's start-up logs.

    Log lines below TF_CPP_MIN_LOG_LEVEL (TensorFlow's default when unset: 0, all pass) are dropped, as
    TensorFlow drops its own later ones; everything else (Python warnings, our own messages) passes,
    in order. Works on file descriptor 2: the C++ libraries write there, not to sys.stderr.
    """
    try:
        level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no stderr to redirect (pythonw), or a level we cannot read
        saved = None
    if saved is None:
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().decode(errors="replace").splitlines(keepends=True)
                    if not native_chatter(line, level)]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


def native_chatter(line, level):
    if line.startswith(ABSL_PREAMBLE):
        return level >= 1  # it is a warning about the lines that follow
    match = NATIVE_LOG.match(line)
    return bool(match) and "IWEF".index(match.group(1) or match.group(2)) < level
