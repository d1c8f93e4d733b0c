"""Every script: a Keras backend that cannot load is one clear line, not a traceback."""
import importlib.util

import pytest

from conftest import assert_clean_error, run_script

SCRIPTS = {
    "train.py": ["--data", "data/fer2013", "--epochs", "1"],
    "realtime.py": ["--source", "0", "--no-display", "--max-frames", "1"],
    "evaluate.py": [],
    "average.py": ["models", "models"],
}


def run_with_backend(script, backend, tmp_path):
    args = SCRIPTS[script] + (["--out", tmp_path / "out"] if script in ("train.py", "average.py") else [])
    return run_script(script, *args, env={"KERAS_BACKEND": backend})


@pytest.mark.parametrize("script", SCRIPTS)
def test_unknown_backend_is_one_clear_line(script, tmp_path):
    result = run_with_backend(script, "nosuchbackend", tmp_path)
    assert_clean_error(result, "nosuchbackend", "KERAS_BACKEND")


@pytest.mark.skipif(importlib.util.find_spec("jax") is not None, reason="jax is installed here")
@pytest.mark.parametrize("script", SCRIPTS)
def test_backend_not_installed_is_one_clear_line(script, tmp_path):
    result = run_with_backend(script, "jax", tmp_path)
    assert_clean_error(result, "'jax' backend", "pip install jax")


# torch is not installed here: the launcher makes Keras report it, as KERAS_BACKEND=torch would.
TORCH_LAUNCHER = """
import sys
import keras
keras.backend.backend = lambda: "torch"
sys.path.insert(0, ".")
import train
sys.exit(train.main(sys.argv[1:]))
"""


def test_distribute_on_a_backend_without_an_engine_is_one_clear_line(tmp_path):
    result = run_script("-c", TORCH_LAUNCHER, "--data", "data/fer2013", "--out", tmp_path / "out", "--distribute")
    assert_clean_error(result, "--distribute", "torch", "KERAS_BACKEND=tensorflow or jax")
