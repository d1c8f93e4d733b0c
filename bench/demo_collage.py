"""Build a crowded test picture from real FER2013 test faces, for the README's annotated demo.

    python bench/demo_collage.py --data ../shared/fer2013 --out out/collage.png
    python realtime.py --source out/collage.png --no-display --bars --output docs/demo.png

Twelve faces, two per emotion, at sizes from 70 to 170 px and close together, so the picture
shows small faces being found and labels placed clear of the neighbouring faces. Faces are taken
in file order, the first ones per emotion that the live detector finds (as a still), so the
picture is the same on every machine with the same data.
"""
import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from expression.detect import FaceDetector  # noqa: E402

EMOTIONS = ("happy", "surprise", "angry", "sad", "neutral", "fear") * 2
SIDES = (170, 90, 130, 70, 150, 110, 80, 160, 100, 140, 120, 75)  # one per face, in order
CELL_W, CELL_H, COLUMNS = 300, 230, 4  # a 1200x690 picture, 4 x 3 faces


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/fer2013")
    p.add_argument("--out", default="out/collage.png")
    args = p.parse_args()
    detector = FaceDetector().for_stills()  # realtime.py's settings for a picture
    rows = -(-len(EMOTIONS) // COLUMNS)
    canvas = np.full((rows * CELL_H, COLUMNS * CELL_W, 3), 60, np.uint8)
    used, found = set(), 0
    for k, (emotion, side) in enumerate(zip(EMOTIONS, SIDES)):
        row, col = divmod(k, COLUMNS)
        y = row * CELL_H + (CELL_H - side) // 2
        x = col * CELL_W + (CELL_W - side) // 2
        for path in sorted((Path(args.data) / "test" / emotion).glob("*.jpg")):
            if path in used:
                continue
            face = cv2.resize(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), (side, side), interpolation=cv2.INTER_CUBIC)
            trial = canvas.copy()
            trial[y:y + side, x:x + side] = face[:, :, None]
            if len(detector.detect(cv2.cvtColor(trial, cv2.COLOR_BGR2GRAY))) == found + 1:  # this face found too
                canvas, found = trial, found + 1
                used.add(path)
                break
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.out, canvas)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
