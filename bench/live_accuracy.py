"""Accuracy through the live path beside accuracy on FER2013's own crops, in one run.

    python bench/live_accuracy.py --data ../shared/fer2013/val --model models

Each face is placed into a 640x480 frame at several sizes, found by the live detector (a
still's full scan), cropped by the live code with each margin, and classified by the live
classifier; the direct number classifies FER2013's own 48x48 crop of the same faces. The
margin whose live accuracy is closest to the direct one is the margin the live demo should
use (realtime.py --margin). Faces the detector misses count against detection, not accuracy.
"""
import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from expression.classify import MARGIN, EmotionClassifier, crop_faces  # noqa: E402
from expression.data import DataError, load_split, stratified_holdout, subset  # noqa: E402
from expression.boxes import iou  # noqa: E402
from expression.detect import FaceDetector  # noqa: E402
from expression.model_files import ModelError, load_model_folder  # noqa: E402


def place(face, size, rng, frame_shape=(480, 640)):
    """A grey, lightly textured frame with `face` scaled to size x size at a random spot; (frame, box)."""
    height, width = frame_shape
    frame = cv2.GaussianBlur(rng.integers(60, 190, frame_shape).astype(np.uint8), (0, 0), 25)
    x, y = int(rng.integers(0, width - size)), int(rng.integers(0, height - size))
    frame[y:y + size, x:x + size] = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC)
    return frame, (x, y, size, size)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "fer2013" / "val"),
                   help="a split folder DIR/<emotion>/ (default: ../shared/fer2013/val)")
    p.add_argument("--model", default=str(ROOT / "models"), help="model folder (default: models/)")
    p.add_argument("--sizes", default="80,140,220", help="face sizes in the frame, pixels (default: 80,140,220)")
    p.add_argument("--margins", default="-0.1,-0.05,0,0.05,0.1,0.2",
                   help="crop margins to compare, share of the box per side; negative trims the box "
                        "(default: %(default)s; a list that starts negative takes '=', e.g. --margins=-0.05,0)")
    p.add_argument("--limit", type=int, default=1000, help="faces, a stratified sample (default: 1000; 0: all)")
    p.add_argument("--seed", type=int, default=0, help="sample, placement and background seed (default: 0)")
    args = p.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
        margins = [float(m) for m in args.margins.split(",")]
    except ValueError:
        print("live_accuracy.py: error: --sizes and --margins take comma-separated numbers, e.g. 80,140", file=sys.stderr)
        return 2
    try:
        if not Path(args.data).is_dir():
            raise DataError(f"{args.data}: no such folder; pass --data DIR with one folder per emotion")
        split = load_split(args.data)
        model, _ = load_model_folder(args.model)
    except (DataError, ModelError) as error:
        print(f"live_accuracy.py: error: {error}", file=sys.stderr)
        return 2
    if args.limit and args.limit < len(split.labels):
        split = subset(split, stratified_holdout(split.labels, args.limit / len(split.labels), args.seed)[1])
    classifier, detector = EmotionClassifier(model), FaceDetector()
    rng = np.random.default_rng(args.seed)
    direct = classifier.probabilities(split.images.astype(np.float32)).argmax(1) == split.labels

    print(f"{args.data}: {len(split.labels)} faces; direct (FER2013's crop) accuracy {direct.mean():.1%}")
    print(f"{'size':>5} {'found':>6} {'direct on found':>16}  " + "  ".join(f"m={m:<5}" for m in margins))
    totals = {m: [] for m in margins}
    found_direct = []
    for size in sizes:
        hits, live = [], {m: [] for m in margins}
        for face, label, right in zip(split.images[..., 0], split.labels, direct):
            frame, truth = place(face, size, rng)
            boxes = [box for box in detector.detect(frame) if iou(box, truth) > 0.3]
            if not boxes:
                continue
            box = max(boxes, key=lambda b: iou(b, truth))
            hits.append(right)
            crops = np.concatenate([crop_faces(frame, [box], m) for m in margins])
            predicted = classifier.probabilities(crops).argmax(1)
            for m, guess in zip(margins, predicted):
                live[m].append(guess == label)
        found_direct += hits
        for m in margins:
            totals[m] += live[m]
        print(f"{size:>5} {len(hits) / len(split.labels):>6.1%} {np.mean(hits):>16.1%}  "
              + "  ".join(f"{np.mean(live[m]):>7.1%}" for m in margins))
    direct_found = np.mean(found_direct)
    best = min(margins, key=lambda m: abs(np.mean(totals[m]) - direct_found))
    print(f"{'all':>5} {len(found_direct) / (len(sizes) * len(split.labels)):>6.1%} {direct_found:>16.1%}  "
          + "  ".join(f"{np.mean(totals[m]):>7.1%}" for m in margins))

    def gap(m):
        return f"margin {m} (live {np.mean(totals[m]):.1%} vs direct {direct_found:.1%}, " \
               f"{100 * (np.mean(totals[m]) - direct_found):+.1f} points)"

    print(f"closest to direct: {gap(best)}")
    if MARGIN in totals:  # what realtime.py does by default
        print(f"live default: {gap(MARGIN)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
