"""What a deeper net costs before it is trained: live classifier time and training speed, side by side.

    python bench/arch_cost.py --convs 1232,2232,1332,1233

Each architecture (train.py's --convs, with --normalize and --width 32) is built with random
weights, exported for OpenCV as the live demo runs it, and timed on two faces in one call, in
alternating rounds so that the machine's drift falls on all of them alike; the ratio is to the
first architecture listed. --train-steps also times SGD steps on random batches of 64 (no
augmentation, so train.py runs somewhat slower). Random weights cost what trained ones do.
"""
import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def fail(message):
    sys.exit(f"arch_cost.py: error: {message}")  # one line on stderr, exit status 1


def train_speed(model, steps, batch_size=64):
    """Images per second of plain SGD steps on random batches (after a few warm-up steps)."""
    import keras

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch_size, 48, 48, 1)).astype(np.float32)
    y = np.eye(7, dtype=np.float32)[rng.integers(0, 7, batch_size)]
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="categorical_crossentropy")
    for _ in range(3):
        model.train_on_batch(x, y)
    tick = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * batch_size / (time.perf_counter() - tick)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--convs", default="1232,2232,1332,1233",
                   help="comma-separated --convs values; the first is the baseline (default: 1232,2232,1332,1233)")
    p.add_argument("--calls", type=int, default=300, help="two-face calls a round (default: 300)")
    p.add_argument("--rounds", type=int, default=9, help="alternating rounds; the median is printed (default: 9)")
    p.add_argument("--train-steps", type=int, default=0, help="also time this many SGD steps of 64 (default: 0, off)")
    args = p.parse_args()
    archs = args.convs.split(",")
    for convs in archs:
        if not convs.isdigit() or "0" in convs:
            fail(f"--convs {args.convs}: give comma-separated values of one digit 1-9 per stage, e.g. 1232,2232")
    if args.calls < 1 or args.rounds < 1 or args.train_steps < 0:
        fail("--calls and --rounds must be at least 1 and --train-steps at least 0")

    from expression.export import opencv_net
    from expression.model import build_model

    models, nets = {}, {}
    for convs in archs:
        models[convs] = build_model(convs=tuple(int(c) for c in convs), dropout=0.2, normalize=True)
        nets[convs] = opencv_net(models[convs])
        if nets[convs] is None:
            fail("OpenCV could not take the exported net: run with the TensorFlow backend (KERAS_BACKEND=tensorflow)")
    crops = np.random.default_rng(0).uniform(0, 255, (2, 48, 48, 1)).astype(np.float32)
    times = {convs: [] for convs in archs}
    for _ in range(args.rounds):
        for convs in archs:
            net = nets[convs]
            net(crops)
            tick = time.perf_counter()
            for _ in range(args.calls):
                net(crops)
            times[convs].append((time.perf_counter() - tick) * 1000 / args.calls)
    base = np.median(times[archs[0]])
    print(f"two faces in one OpenCV call, median of {args.rounds} alternating rounds of {args.calls} calls:")
    print("  convs   weights MB   two faces ms   ratio to " + archs[0] + ("   train images/s" if args.train_steps else ""))
    for convs in archs:
        ms = np.median(times[convs])
        line = f"  {convs:5s}  {models[convs].count_params() * 4 / 1e6:11.2f}  {ms:13.2f}  {ms / base:12.2f}x"
        if args.train_steps:
            line += f"  {train_speed(models[convs], args.train_steps):15.0f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
