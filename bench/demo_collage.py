"""Build a test picture from real FER2013 test faces, for the README's annotated demo.

    python bench/demo_collage.py --data ../shared/fer2013 --out out/collage.png
    python realtime.py --source out/collage.png --no-display --bars --output docs/demo.png

Faces are taken in file order, the first one per emotion that the Haar cascade finds, so the
picture is the same on every machine with the same data.
"""
import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from expression.detect import FaceDetector  # noqa: E402

EMOTIONS = ("happy", "surprise", "angry", "sad", "neutral", "fear")
SIDE, GAP = 180, 110  # face size and the room each face's label and bars need


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/fer2013")
    p.add_argument("--out", default="out/collage.png")
    args = p.parse_args()
    detector = FaceDetector()  # realtime.py's default settings
    canvas = np.full((2 * (SIDE + GAP) + 20, 3 * (SIDE + 2 * GAP), 3), 60, np.uint8)
    for k, emotion in enumerate(EMOTIONS):
        row, col = divmod(k, 3)
        y, x = 50 + row * (SIDE + GAP), 20 + col * (SIDE + 2 * GAP)
        for path in sorted((Path(args.data) / "test" / emotion).glob("*.jpg")):
            face = cv2.resize(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), (SIDE, SIDE), interpolation=cv2.INTER_CUBIC)
            trial = canvas.copy()
            trial[y:y + SIDE, x:x + SIDE] = face[:, :, None]
            if len(detector.detect(cv2.cvtColor(trial, cv2.COLOR_BGR2GRAY))) == k + 1:  # this face found too
                canvas = trial
                break
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.out, canvas)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
