"""Every script: a Keras backend that cannot load is one clear line, not a traceback."""
import importlib.util

import pytest

from conftest import assert_clean_error, run_script

SCRIPTS = {
    "train.py": ["--data", "data/fer2013", "--epochs", "1"],
    "realtime.py": ["--source", "0", "--no-display", "--max-frames", "1"],
    "evaluate.py": [],
}


def run_with_backend(script, backend, tmp_path):
    args = SCRIPTS[script] + (["--out", tmp_path / "out"] if script == "train.py" else [])
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
