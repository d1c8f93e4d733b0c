"""The live benchmark runs end to end and prints every figure the README quotes (not timed here)."""
import re

import pytest

from conftest import ROOT, assert_clean_error, needs_data, run_script
from test_data import make_split


@needs_data
def test_live_benchmark_prints_stages_speed_memory_and_ratio():
    result = run_script("bench/realtime_bench.py", "--frames", "40", "--naive-frames", "3")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"pipeline \(\w+ classifier\): 40 frames, [\d.]+ faces/frame, \d+ frames/s, "
                     r"latency p50 [\d.]+ ms p95 [\d.]+ ms", out), out
    stages = re.search(r"per stage \(mean ms\): decode ([\d.]+) .*detect ([\d.]+), classify ([\d.]+), "
                       r"track ([\d.]+), draw ([\d.]+)", out)
    assert stages and all(float(ms) > 0 for ms in stages.groups()), out
    assert re.search(r"memory: \d+ MB after the first frame, \d+ MB at the end", out), out
    assert re.search(r"naive: +3 frames, .* frames/s", out) and re.search(r"speed-up: [\d.]+x", out), out
    # Both loops see the clip's two faces.
    assert float(re.search(r"([\d.]+) faces/frame", out).group(1)) > 1.5, out


@needs_data
def test_output_cost_prints_the_three_loops_side_by_side_and_the_ratios():
    result = run_script("bench/realtime_bench.py", "--output-cost", "--frames", "12")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"no output +[\d.]+", out), out
    assert re.search(r"inline VideoWriter +[\d.]+ +\(\d+% of no output; the naive way\)", out), out
    assert re.search(r"FrameWriter thread +[\d.]+ +\(\d+% of no output; [\d.]+x the inline writer\)", out), out


@pytest.mark.parametrize("case", ["unreadable_video", "no_data", "missing_model"])
def test_bench_bad_input_is_one_clear_line(case, tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_text("this is not a video")
    if case == "unreadable_video":
        args, expect = [video], ["clip.mp4", "no frame could be read"]
    elif case == "no_data":
        args, expect = ["--data", tmp_path / "nowhere"], ["nowhere", "no FER2013 test folder", "--data"]
    else:
        args, expect = [video, "--model", tmp_path], ["not found"]
    assert_clean_error(run_script("bench/realtime_bench.py", *args), *expect)


@needs_data
def test_live_accuracy_prints_direct_and_live_accuracy_per_margin():
    result = run_script("bench/live_accuracy.py", "--limit", "21", "--sizes", "140", "--margins=-0.05,0.1")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"\d+ faces; direct \(FER2013's crop\) accuracy [\d.]+%", out), out
    row = re.search(r"^\s+140\s+([\d.]+)%\s+([\d.]+)%\s+([\d.]+)%\s+([\d.]+)%$", out, re.M)
    assert row and float(row.group(1)) > 0, out  # some faces found, and each margin scored
    assert re.search(r"closest to direct: margin (-0\.05|0\.1) \(live [\d.]+% vs direct [\d.]+%", out), out
    assert re.search(r"live default: margin -0\.05 \(live [\d.]+% vs direct [\d.]+%", out), out  # realtime.py's crop


def test_arch_cost_prints_each_architecture_beside_the_first():
    result = run_script("bench/arch_cost.py", "--convs", "1112,1122", "--calls", "3", "--rounds", "2",
                        "--train-steps", "1")
    assert result.returncode == 0, result.stderr
    rows = re.findall(r"^  (\d{4}) +([\d.]+) +([\d.]+) +([\d.]+)x +(\d+)$", result.stdout, re.M)
    assert [row[0] for row in rows] == ["1112", "1122"], result.stdout
    assert float(rows[0][3]) == 1.0 and float(rows[1][1]) > float(rows[0][1]) > 0, result.stdout  # a conv adds weights
    assert all(float(row[2]) > 0 and int(row[4]) > 0 for row in rows), result.stdout


def test_arch_cost_bad_convs_is_one_clear_line():
    assert_clean_error(run_script("bench/arch_cost.py", "--convs", "1232,12x"), "--convs", "one digit 1-9 per stage")


@needs_data
def test_teacher_call_prints_the_eager_and_the_compiled_call_and_their_ratio(tmp_path):
    make_split(tmp_path / "train", per_class=10)
    result = run_script("bench/train_throughput.py", "--data", tmp_path, "--teachers", ROOT / "models", ROOT / "models")
    assert result.returncode == 0, result.stderr  # the script also checks that both calls give the same answer
    found = re.search(r"2 teachers on a batch of 64: eager (\d+) ms, compiled (\d+) ms, ratio ([\d.]+)x", result.stdout)
    assert found and int(found.group(1)) > 0 and int(found.group(2)) > 0, result.stdout


@needs_data
def test_teacher_call_with_too_few_faces_is_one_clear_line(tmp_path):
    make_split(tmp_path / "train", per_class=2)  # 14 faces, and the call times a batch of 64
    (tmp_path / "train" / "happy" / "extra").mkdir()  # a subfolder and a hidden file are not faces
    (tmp_path / "train" / "happy" / ".DS_Store").write_bytes(b"\0")
    # A file that cannot be read (even as root: reading /proc/self/mem at offset 0 is an I/O error).
    (tmp_path / "train" / "happy" / "unreadable.jpg").symlink_to("/proc/self/mem")
    result = run_script("bench/train_throughput.py", "--data", tmp_path, "--teachers", ROOT / "models")
    assert_clean_error(result, "fewer than 64 readable faces")
