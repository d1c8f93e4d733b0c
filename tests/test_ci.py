"""CI builds its own environment and leaves a user's .venv alone."""
import re

from conftest import ROOT


def test_ci_never_deletes_a_users_venv():
    script = (ROOT / ".ci" / "run").read_text()
    removed = re.findall(r"rm -rf\s+(\S+)", script)
    assert removed, "CI should start from a fresh environment of its own"
    venv = re.search(r"^venv=(\S+)", script, re.M).group(1)
    assert all(target in (venv, '"$venv"') for target in removed), removed
    assert venv.strip("\"'") not in (".venv", "venv", "env")
    assert f"{venv}/" in (ROOT / ".gitignore").read_text()
