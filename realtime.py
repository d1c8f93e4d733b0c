"""Recognise facial expressions live: webcam (or video, image, folder) -> annotated window.

    python realtime.py                          # webcam 0, Esc or q quits
    python realtime.py --source clip.mp4 --no-display --output annotated.mp4

Keys in the window: Esc or q quit, space pauses, s saves a snapshot PNG.
"""
import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter off the terminal
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")  # our own one-line messages replace OpenCV's warnings


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default="0", help="camera index, video file, image file or folder of images (default: 0)")
    p.add_argument("--model", default="models/emotion.json", help="model architecture JSON")
    p.add_argument("--weights", default=None, help="model weights (default: emotion.weights.h5 beside --model)")
    p.add_argument("--labels", default=None, help="labels.json (default: beside --model)")
    p.add_argument("--output", default=None, help="write the annotated video (.mp4/.avi) or image (.png/.jpg)")
    p.add_argument("--log", default=None, help="CSV with one row per face per frame")
    p.add_argument("--summary", default=None, help="at the end, plot each face's emotion over time to this PNG")
    p.add_argument("--no-display", action="store_true", help="no window (for files, servers and tests)")
    p.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: until the end)")
    p.add_argument("--smooth", type=float, default=0.6, help="EMA weight of a face's past probabilities, 0..1 (0: off)")
    p.add_argument("--bars", action="store_true", help="draw each face's seven probabilities")
    p.add_argument("--detect-width", type=int, default=320, help="detect faces on a copy this wide (0: full size)")
    p.add_argument("--scale-factor", type=float, default=1.1, help="Haar cascade scale step")
    p.add_argument("--min-neighbors", type=int, default=3, help="Haar cascade neighbours needed for a face")
    p.add_argument("--cascade", default="haarcascade_frontalface_alt2.xml",
                   help="Haar cascade XML: a path, or the name of one shipped with OpenCV")
    p.add_argument("--rescan", type=int, default=15,
                   help="spread each whole-frame scan over N frames; every frame searches around tracked faces "
                        "(0: a whole scan every frame)")
    p.add_argument("--margin", type=float, default=0.1, help="context added around each face box, per side")
    return p.parse_args(argv)


def fail(message, code=2):
    print(f"realtime.py: error: {message}", file=sys.stderr)
    return code


def check_options(args):
    if not 0 <= args.smooth < 1:
        return f"--smooth {args.smooth}: give a number from 0 (off) to below 1"
    if args.scale_factor <= 1:
        return f"--scale-factor {args.scale_factor}: must be above 1 (e.g. 1.1)"
    if min(args.max_frames, args.min_neighbors, args.detect_width, args.margin, args.rescan) < 0:
        return "--max-frames, --min-neighbors, --detect-width, --margin and --rescan cannot be negative"
    if not args.no_display and sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no screen to open a window on ($DISPLAY is not set); add --no-display (and --output FILE)"
    return None


def main(argv=None):
    args = parse_args(argv)
    problem = check_options(args)
    if problem:
        return fail(problem)
    model_json = Path(args.model)
    weights = Path(args.weights) if args.weights else model_json.with_name("emotion.weights.h5")
    labels_json = Path(args.labels) if args.labels else model_json.with_name("labels.json")

    from expression.backend import backend_problem
    problem = backend_problem()
    if problem:
        return fail(problem)
    from expression.detect import DetectorError, FaceDetector
    from expression.live import LivePipeline
    from expression.model_files import ModelError, load_model
    from expression.sink import CsvLog, EmotionTimeline, FrameWriter, SinkError, Window
    from expression.source import SourceError, open_source

    try:
        detector = FaceDetector(args.detect_width, args.scale_factor, args.min_neighbors, cascade=args.cascade)
        model, labels = load_model(model_json, weights, labels_json if args.labels or labels_json.is_file() else None)
        source = open_source(args.source)
    except (DetectorError, ModelError, SourceError) as error:
        return fail(str(error))
    parts = [source]
    try:
        writer = FrameWriter(args.output, source.fps) if args.output else None
        log = CsvLog(args.log, labels) if args.log else None
        timeline = EmotionTimeline(args.summary, labels) if args.summary else None
        parts += [writer, log, timeline]
        # Separate pictures share no faces: no smoothing or searching carried over between them.
        stills = getattr(source, "stills", False)
        pipeline = LivePipeline(model, labels, detector, smooth=0 if stills else args.smooth, margin=args.margin,
                                bars=args.bars, rescan=0 if stills else args.rescan)
        window = None if args.no_display else Window()
        parts.append(window)
        stats = run(source, pipeline, writer, [part for part in (log, timeline) if part], window, args.max_frames)
    except SinkError as error:
        return fail(str(error))
    except KeyboardInterrupt:
        stats = None
    finally:
        # Always finalise: the video stays playable and the log complete, whatever stopped us.
        problem = close_all(parts, SinkError)
    if problem:
        return fail(problem)
    if stats is None:
        print("realtime.py: stopped (Ctrl-C); outputs are complete up to the last frame", file=sys.stderr)
        return 130
    if getattr(source, "failed", False):
        print("realtime.py: the camera stopped delivering frames; stopped and kept what was recorded", file=sys.stderr)
    print(f"{stats['frames']} frames, {stats['faces']} faces, {stats['tracks']} tracked people, "
          f"{stats['fps']:.1f} frames/s" + (f"; wrote {args.output}" if args.output else "")
          + (f" and {args.log}" if args.log else ""))
    if timeline:
        print(f"{timeline.summary()}; plot in {args.summary}")
    return 0


def close_all(parts, error_type):
    problem = None
    for part in parts:
        if part is None:
            continue
        try:
            part.close()
        except error_type as error:
            problem = str(error)
    return problem


def run(source, pipeline, writer, logs, window, max_frames):
    """The frame loop; returns counts for the closing line."""
    from expression.draw import draw_status

    frames = faces = 0
    started = time.perf_counter()
    progress = progress_line(getattr(source, "total", 0), max_frames, started) if window is None else None
    fps, previous = 0.0, started
    for frame in source.frames():
        tick = time.perf_counter()
        tracks = pipeline.process(frame)
        latency = (time.perf_counter() - tick) * 1000
        frames += 1
        faces += len(tracks)
        for log in logs:
            log.write(frames - 1, tick - started, tracks)
        now = time.perf_counter()
        fps = 0.9 * fps + 0.1 / max(now - previous, 1e-6) if frames > 1 else 1 / max(now - previous, 1e-6)
        previous = now
        if window:
            draw_status(frame, fps, latency)
        if writer:
            writer.write(frame)
        if window:
            action = window.show(frame)
            if action == "pause":
                action = window.hold(frame)
            if action == "quit":
                break
        if progress:
            progress(frames)
        if max_frames and frames >= max_frames:
            break
    if progress:
        print(file=sys.stderr)  # end the progress line
    elapsed = time.perf_counter() - started
    return {"frames": frames, "faces": faces, "tracks": pipeline.tracker.next_id - 1,
            "fps": frames / elapsed if elapsed > 0 else 0.0}


def progress_line(total, max_frames, started):
    """For files processed headless on a terminal: a line redrawn about once a second."""
    if not total or not sys.stderr.isatty():
        return None
    total = min(total, max_frames) if max_frames else total
    last = [0.0]

    def show(done):
        now = time.perf_counter()
        if now - last[0] < 1 and done < total:
            return
        last[0] = now
        rate = done / max(now - started, 1e-6)
        left = max(0, total - done) / max(rate, 1e-6)
        bar = "#" * int(30 * min(done, total) / total)
        print(f"\r[{bar:<30}] {done}/{total} frames  {rate:.0f}/s  {left:.0f} s left ", end="", file=sys.stderr,
              flush=True)
    return show


if __name__ == "__main__":
    sys.exit(main())
