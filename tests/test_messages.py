"""Every --flag a script's messages tell the user to pass is an option of the script that takes it.

assert_clean_error (conftest.py) checks the line of every bad-input case the tests provoke; this
checks the messages in the scripts' source too, including those no test provokes.
"""
import ast

import pytest

from conftest import ROOT, assert_names_real_flags

SCRIPTS = ["train.py", "evaluate.py", "realtime.py", "average.py", "calibrate.py", "bench/realtime_bench.py",
           "bench/crowd_bench.py", "bench/live_accuracy.py", "bench/arch_cost.py"]


def message_strings(path):
    """The script's string literals and f-strings (formatted values as {}), less docstrings and help= texts,
    which describe other scripts too."""
    tree = ast.parse(path.read_text())
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "help":
            skip.update(id(n) for n in ast.walk(node.value))
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and ast.get_docstring(node) is not None:
            skip.add(id(node.body[0].value))
    texts = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.JoinedStr):
            skip.update(id(n) for n in ast.walk(node))
            texts.append("".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            texts.append(node.value)
    return [t for t in texts if "--" in t]


@pytest.mark.parametrize("script", SCRIPTS)
def test_flags_named_in_a_scripts_messages_exist(script):
    for text in message_strings(ROOT / script):
        if text.startswith("--") and " " not in text:  # the parser's own option names
            continue
        assert_names_real_flags(script, text)
