"""Benchmark the live pipeline against the naive loop, headless, in one run.

    python bench/realtime_bench.py [VIDEO] --frames 2000 --naive-frames 200
    python bench/realtime_bench.py --sweep      # what each detector setting and cascade costs and finds
    python bench/realtime_bench.py --classifiers  # OpenCV's DNN engine beside a compiled Keras call
    python bench/realtime_bench.py ../shared/realmedia/crowd_walking_1080p.mp4 --output-cost
        # what writing the annotated video (--output) costs: none, the naive inline writer, ours

The naive loop is what the popular FER repos do: Haar (frontalface_default) on the full frame
with scale 1.3 and 5 neighbours, then one model.predict per face. Decoding is excluded from both: frames are
decoded once into memory and replayed. Without VIDEO, a 640x480 clip of two real FER2013
test faces is assembled (needs ../shared/fer2013).
"""
import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from expression.classify import EmotionClassifier  # noqa: E402
from expression.boxes import group_hits, iou  # noqa: E402
from expression.cascades import CASCADE, cascade_path  # noqa: E402
from expression.detect import FaceDetector  # noqa: E402
from expression.labels import EMOTIONS  # noqa: E402
from expression.live import STAGES, LivePipeline  # noqa: E402
from expression.model_files import ModelError, load_model_folder  # noqa: E402


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def load_frames(video, data, limit=300):
    """Up to `limit` frames decoded into memory, and the mean milliseconds decoding took a frame.

    Without `video`, the clip of real faces is written as MJPG (what webcams send) and read
    back, so decoding is measured either way.
    """
    with tempfile.TemporaryDirectory() as folder:
        if not video:
            video = Path(folder) / "faces.avi"
            writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
            for frame in face_clip(data, limit):
                writer.write(frame)
            writer.release()
        capture, frames, tick = cv2.VideoCapture(str(video)), [], time.perf_counter()
        while len(frames) < limit:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
        decode_ms = (time.perf_counter() - tick) * 1000 / max(1, len(frames))
        capture.release()
    return frames, decode_ms


def face_clip(data, count):
    """640x480 frames of two real FER2013 test faces (ones the detector finds) drifting sideways."""
    faces = []
    detector = FaceDetector(check=None)  # the clip the documented figures were measured on
    for emotion in ("happy", "surprise", "neutral"):
        for path in sorted((Path(data) / "test" / emotion).glob("*.jpg")):
            face = cv2.resize(cv2.imread(str(path), 0), (160, 160), interpolation=cv2.INTER_CUBIC)
            probe = np.full((480, 640), 110, np.uint8)
            probe[160:320, 240:400] = face
            if len(detector.detect(probe)) == 1:
                faces.append(face)
                break
    frames = []
    for i in range(count):
        frame = np.full((480, 640), 110, np.uint8)
        for k, face in enumerate(faces[:2]):
            x = 40 + 320 * k + int(30 * np.sin(i / 15))
            frame[140 + 10 * k:300 + 10 * k, x:x + 160] = face
        frames.append(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    return frames


def run_pipeline(pipeline, frames, count):
    stage_ms = {stage: [] for stage in STAGES}
    latency, faces, memory = [], 0, []
    for i in range(count):
        frame = frames[i % len(frames)].copy()
        tick = time.perf_counter()
        faces += len(pipeline.process(frame))
        latency.append((time.perf_counter() - tick) * 1000)
        for stage in STAGES:
            stage_ms[stage].append(pipeline.milliseconds[stage])
        if i % 500 == 0 or i == count - 1:
            memory.append(rss_mb())
    return np.array(latency), stage_ms, faces, memory


def run_naive(model, labels, frames, count):
    cascade = cv2.CascadeClassifier(str(cascade_path("haarcascade_frontalface_default.xml")))
    latency, faces = [], 0
    for i in range(count):
        frame = frames[i % len(frames)].copy()
        tick = time.perf_counter()
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        for (x, y, w, h) in cascade.detectMultiScale(gray, 1.3, 5):
            crop = cv2.resize(gray[y:y + h, x:x + w], (48, 48))[None, :, :, None].astype("float32")
            probabilities = model.predict(crop, verbose=0)[0]
            cv2.rectangle(frame, (x, y), (x + w, y + h), (255, 0, 0), 2)
            cv2.putText(frame, labels[int(probabilities.argmax())], (x, y - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.8,
                        (255, 0, 0), 2)
            faces += 1
        latency.append((time.perf_counter() - tick) * 1000)
    return np.array(latency), faces


def sweep(frames, expected=2, count=100):
    """Full-frame detection only, per setting: milliseconds per frame and faces found."""
    print(f"detector settings on {count} frames with {expected} faces each (full scans, no tracking):")
    print("  detect width  scale  neighbours   ms/frame  faces found")
    grays = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames[:count]]
    for width in (0, 480, 320, 240):
        for scale in (1.1, 1.3):
            detector = FaceDetector(detect_width=width, scale_factor=scale)
            tick, found = time.perf_counter(), 0
            for gray in grays:
                found += min(expected, len(detector.detect(gray)))
            ms = (time.perf_counter() - tick) * 1000 / len(grays)
            print(f"  {width or 'full':>12}  {scale:5.1f}  {detector.min_neighbors:10d}  {ms:9.1f}  "
                  f"{found / (expected * len(grays)):10.0%}")


def sweep_cascades(data, per_emotion=100, sizes=(96, 160, 240)):
    """Each frontal-face cascade and neighbour count on FER2013 val faces, none picked by a detector.

    One face per 640x480 frame at each size: found = a box overlapping it (IoU > 0.3), false =
    any other box. The neighbour counts come from one raw scan grouped as detectMultiScale does.
    """
    faces = [cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) for emotion in EMOTIONS
             for path in sorted((Path(data) / "val" / emotion).glob("*.jpg"))[:per_emotion]]
    neighbours = (2, 3, 4, 5)
    print(f"\ncascades on {len(faces)} FER2013 val faces, one per 640x480 frame, detect width 320, scale 1.1:")
    print("  cascade    face px  scan ms  around ms  " + "  ".join(f"found/false at {n}" for n in neighbours))
    for name in ("default", "alt", "alt2"):
        detector = FaceDetector(cascade=f"haarcascade_frontalface_{name}.xml")
        for size in sizes:
            scan_s, around_s, arounds, found, false = 0.0, 0.0, 0, dict.fromkeys(neighbours, 0), dict.fromkeys(neighbours, 0)
            for face in faces:
                frame, (x, y) = np.full((480, 640), 110, np.uint8), (320 - size // 2, 240 - size // 2)
                frame[y:y + size, x:x + size] = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC)
                small, scale = detector.shrink(frame)
                tick = time.perf_counter()
                hits = detector._scan(small, detector.smallest(small), max(small.shape), min_neighbors=0)
                scan_s += time.perf_counter() - tick
                for n in neighbours:
                    grouped = group_hits(hits, n)  # as FaceDetector.detect groups them
                    good = sum(iou(box, np.array([x, y, size, size]) * scale) > 0.3 for box in grouped)
                    found[n] += good > 0
                    false[n] += len(grouped) - min(good, 1)
                boxes = detector.detect(frame)
                if len(boxes):  # the search around a tracked face, which live frames pay for
                    tick = time.perf_counter()
                    detector.detect(frame, near=boxes[:1])
                    around_s, arounds = around_s + time.perf_counter() - tick, arounds + 1
            print(f"  {name:8s}  {size:7d}  {scan_s * 1000 / len(faces):7.1f}  {around_s * 1000 / max(1, arounds):9.2f}  "
                  + "  ".join(f"{found[n] / len(faces):8.0%} / {false[n]:<5d}" for n in neighbours))


def compare_classifiers(model, calls=300, rounds=5):
    """Milliseconds per call of each engine on the same crops; rounds alternate to share the noise."""
    engines = {name: EmotionClassifier(model, engine=name) for name in ("keras", "opencv")}
    print(f"classifier engines, median of {rounds} rounds of {calls} calls (one call per frame, all its faces):")
    print("  faces   keras ms   opencv ms   keras/opencv")
    crops = np.random.default_rng(0).uniform(0, 255, (8, 48, 48, 1)).astype(np.float32)
    for faces in (1, 2, 4, 8):
        times = {name: [] for name in engines}
        for _ in range(rounds):
            for name, classifier in engines.items():
                tick = time.perf_counter()
                for _ in range(calls):
                    classifier.probabilities(crops[:faces])
                times[name].append((time.perf_counter() - tick) * 1000 / calls)
        keras_ms, opencv_ms = np.median(times["keras"]), np.median(times["opencv"])
        print(f"  {faces:5d}  {keras_ms:9.2f}  {opencv_ms:10.2f}  {keras_ms / opencv_ms:12.1f}x")


def compare_output(model, labels, frames, count, rounds=3):
    """Frames/s of the live loop with no --output, with an inline cv2.VideoWriter (the naive way), and
    with realtime.py's FrameWriter (encoding in its own thread), in alternating rounds, side by side."""
    from expression.sink import FrameWriter

    def loop(kind, folder):
        pipeline = LivePipeline(model, labels)
        path = Path(folder) / f"{kind}.mp4"
        writer = None
        if kind == "inline":
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30,
                                     (frames[0].shape[1], frames[0].shape[0]))
        elif kind == "thread":
            writer = FrameWriter(path, 30)
        tick = time.perf_counter()
        for i in range(count):
            frame = frames[i % len(frames)].copy()
            pipeline.process(frame)
            if writer is not None:
                writer.write(frame)
        if writer is not None:  # the last frames' encoding counts too: the file is complete here
            writer.release() if kind == "inline" else writer.close()
        return count / (time.perf_counter() - tick)

    fps = {"none": [], "inline": [], "thread": []}
    with tempfile.TemporaryDirectory() as folder:
        loop("none", folder)  # warm-up
        for _ in range(rounds):
            for kind in fps:
                fps[kind].append(loop(kind, folder))
    best = {kind: max(values) for kind, values in fps.items()}
    print(f"what realtime.py --output costs, {count} frames x {rounds} rounds, best round each (frames/s):")
    print(f"  no output           {best['none']:6.1f}")
    print(f"  inline VideoWriter  {best['inline']:6.1f}  ({best['inline'] / best['none']:.0%} of no output; the naive way)")
    print(f"  FrameWriter thread  {best['thread']:6.1f}  ({best['thread'] / best['none']:.0%} of no output; "
          f"{best['thread'] / best['inline']:.2f}x the inline writer)")


def fail(message):
    sys.exit(f"realtime_bench.py: error: {message}")  # one line on stderr, exit status 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", nargs="?", help="video to replay (default: a clip of real FER2013 faces)")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "fer2013"))
    p.add_argument("--model", default=str(ROOT / "models"))
    p.add_argument("--frames", type=int, default=2000, help="frames through the pipeline")
    p.add_argument("--naive-frames", type=int, default=200, help="frames through the naive loop (it is slow)")
    p.add_argument("--detect-width", type=int, default=0)
    p.add_argument("--cascade", default=CASCADE)
    p.add_argument("--min-neighbors", type=int, default=3)
    p.add_argument("--rescan", type=int, default=15, help="whole-frame scan spread over N frames (realtime.py's default)")
    p.add_argument("--sweep", action="store_true", help="time the detector settings instead")
    p.add_argument("--classifiers", action="store_true", help="time the classifier engines instead")
    p.add_argument("--output-cost", action="store_true",
                   help="time the live loop with no --output, an inline video writer and realtime.py's threaded one")
    args = p.parse_args()

    needed = ([] if args.video or args.classifiers else ["test"]) + (["val"] if args.sweep else [])
    missing = [split for split in needed if not (Path(args.data) / split).is_dir()]
    if missing:
        fail(f"{args.data}: no FER2013 {' or '.join(missing)} folder to build the clip from; "
             "pass --data DIR (with test/ and val/), or a VIDEO to replay")
    try:
        model, labels = load_model_folder(args.model)
    except ModelError as error:
        fail(str(error))
    if args.classifiers:
        return compare_classifiers(model)
    frames, decode_ms = load_frames(args.video, args.data)
    if not frames:
        fail(f"{args.video}: no frame could be read; pass a readable video (.mp4, .avi), or none for the built clip")
    print(f"{len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]} decoded into memory and replayed "
          f"(decoding excluded from frames/s); {os.cpu_count()} CPU cores")

    if args.output_cost:
        return compare_output(model, labels, frames, min(args.frames, 3 * len(frames)))
    if args.sweep:
        sweep(frames)
        return sweep_cascades(args.data)
    detector = FaceDetector(detect_width=args.detect_width, min_neighbors=args.min_neighbors, cascade=args.cascade)
    pipeline = LivePipeline(model, labels, detector, rescan=args.rescan)
    run_pipeline(pipeline, frames, 20)  # warm-up
    latency, stage_ms, faces, memory = run_pipeline(pipeline, frames, args.frames)
    fps = 1000 / latency.mean()
    print(f"pipeline ({pipeline.classifier.engine} classifier): {args.frames} frames, "
          f"{faces / args.frames:.2f} faces/frame, {fps:.0f} frames/s, "
          f"latency p50 {np.percentile(latency, 50):.1f} ms p95 {np.percentile(latency, 95):.1f} ms")
    print(f"  per stage (mean ms): decode {decode_ms:.2f} (not in frames/s), "
          + ", ".join(f"{s} {np.mean(v):.2f}" for s, v in stage_ms.items()))
    print(f"  memory: {memory[0]:.0f} MB after the first frame, {memory[-1]:.0f} MB at the end "
          f"({memory[-1] - memory[0]:+.0f} MB); peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")

    naive_latency, naive_faces = run_naive(model, labels, frames, args.naive_frames)
    naive_fps = 1000 / naive_latency.mean()
    print(f"naive:    {args.naive_frames} frames, {naive_faces / args.naive_frames:.2f} faces/frame, "
          f"{naive_fps:.1f} frames/s, latency p50 {np.percentile(naive_latency, 50):.1f} ms "
          f"p95 {np.percentile(naive_latency, 95):.1f} ms")
    print(f"speed-up: {fps / naive_fps:.1f}x")


if __name__ == "__main__":
    main()
