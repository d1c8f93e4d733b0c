"""Where annotated frames go: an OpenCV window, a video or image file, a folder of images, a CSV log, a summary plot."""
import csv
import os
import sys
import threading
import time
from pathlib import Path

import cv2

from .data import IMAGE_SUFFIXES
from .detect import to_gray
from .draw import label_text

ESC = 27
NO_KEY = -1  # cv2.waitKey when no key was pressed


class SinkError(Exception):
    """An output that cannot be written; str() is the user's message."""


def plural(count, one, many=None):
    """'1 frame', '2 frames'; `many` for irregular words ('tracked people')."""
    return f"{count} {one if count == 1 else many or one + 's'}"


def check_writable(path, flag):
    """Fail before the first frame, not after an hour of video."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise SinkError(f"{path}: is a folder; pass {flag} FILE (e.g. out.mp4)")
    if not folder.is_dir():
        raise SinkError(f"{path}: folder {folder} does not exist; create it or pass another {flag} path")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise SinkError(f"{path}: cannot write there (permission denied); pass {flag} with a writable path")


# What --summary's plot can be saved as: formats matplotlib writes (with Pillow, which it brings).
PLOT_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg", ".webp", ".tif", ".tiff")


def check_plot_path(path, flag="--summary"):
    """Fail before the first frame: a plot needs a writable path named as a picture, not e.g. a .csv."""
    check_writable(path, flag)
    if Path(path).suffix.lower() not in PLOT_SUFFIXES:
        raise SinkError(f"{path}: {flag} draws a picture, and {Path(path).suffix or 'no suffix'} is not one; "
                        f"name it .png (or {', '.join(PLOT_SUFFIXES[1:])})")


def output_is_folder(path):
    """--output names a folder (one annotated image per input image) when it is one or has no suffix."""
    path = Path(path)
    return path.is_dir() or not path.suffix


def check_output(path, stills, inputs=None):
    """Fail before the first frame: --output as a file, or as a folder for pictures (not beside `inputs`)."""
    if not output_is_folder(path):
        check_writable(path, "--output")
        return
    path = Path(path)
    if not stills:
        raise SinkError(f"{path}: a folder takes one annotated image per input image; for a video or camera "
                        "pass --output FILE (e.g. out.mp4)")
    if not path.is_dir() and not path.parent.is_dir():
        raise SinkError(f"{path}: folder {path.parent} does not exist; create it or pass another --output folder")
    if inputs is not None and path.resolve() == Path(inputs).resolve():
        raise SinkError(f"{path}: is the folder of the input images, which would be overwritten; "
                        "pass another --output folder")
    if not os.access(path if path.is_dir() else path.parent, os.W_OK):
        raise SinkError(f"{path}: cannot write there (permission denied); pass --output with a writable folder")


def open_output(path, fps, stills, inputs=None):
    """The writer for --output: an annotated video or image file, or a folder of annotated images."""
    check_output(path, stills, inputs)
    return ImageFolder(path) if output_is_folder(path) else FrameWriter(path, fps)


class ImageFolder:
    """One annotated image per input image, under the input's file name."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.folder.mkdir(exist_ok=True)

    def write(self, frame, source=None):
        frame = as_bgr(frame)
        if frame is None or source is None:
            return
        path = self.folder / Path(source).name
        if not cv2.imwrite(str(path), frame):
            raise SinkError(f"{path}: could not write the image; check free space and that OpenCV writes "
                            f"{path.suffix or 'this type'} files")

    def close(self):
        pass


class FrameWriter:
    """An annotated video (.mp4/.avi), or for an image path the last frame as that image.

    Video frames are encoded in a thread of their own, fed through a short queue: encoding a
    1080p frame takes as long as finding and classifying its faces, and OpenCV's encoder
    releases the GIL, so the two overlap on two cores instead of taking turns. The queue is
    bounded, so a slow disk holds the loop back rather than filling memory; no frame is dropped.
    """

    QUEUE = 8  # frames waiting to be encoded: about 50 MB at 1080p

    def __init__(self, path, fps):
        check_writable(path, "--output")
        self.path, self.fps = Path(path), fps
        self.writer, self.size, self.last, self.frames = None, None, None, 0
        self.queue, self.thread, self.error = None, None, None

    def write(self, frame, source=None):
        """Add `frame`; `source` (the file it came from) matters to ImageFolder only."""
        frame = as_bgr(frame)
        if frame is None:
            return
        self.frames += 1
        if self.path.suffix.lower() in IMAGE_SUFFIXES:
            self.last = frame
            return
        if self.writer is None:
            self._open((frame.shape[1], frame.shape[0]))
        self._raise_encoder_error()
        # Queued as it is, not copied (6 MB a 1080p frame): the caller must not draw on a frame after
        # writing it; realtime.py's loop takes a new frame from its source each time. Blocks while full.
        self.queue.put(frame)

    def _open(self, size):
        import queue

        self.size = size
        fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
        self.writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, self.size)
        if not self.writer.isOpened():
            raise SinkError(f"{self.path}: OpenCV cannot write this video type; use an .mp4 or .avi name")
        self.queue = queue.Queue(self.QUEUE)
        self.thread = threading.Thread(target=self._encode, name="video-writer", daemon=True)
        self.thread.start()

    def _encode(self):
        try:  # lowest priority: encode in the time finding and classifying faces leave idle (Linux)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (AttributeError, OSError):
            pass
        while (frame := self.queue.get()) is not None:
            if self.error is not None:
                continue  # keep taking frames so that the loop never blocks on a dead writer
            try:
                if (frame.shape[1], frame.shape[0]) != self.size:  # a folder of images of different sizes
                    frame = cv2.resize(frame, self.size)
                self.writer.write(frame)
            except Exception as error:  # reported by the next write() or close(), in the main thread
                self.error = error

    def _raise_encoder_error(self):
        if self.error is not None:
            raise SinkError(f"{self.path}: could not write the video ({self.error}); check free space")

    def close(self):
        if self.thread is not None:
            self.queue.put(None)  # after the frames still queued
            self.thread.join()
            self.thread = None
        if self.writer is not None:
            self.writer.release()  # finalises the container: the file is playable
            self._raise_encoder_error()
        if self.last is not None and not cv2.imwrite(str(self.path), self.last):
            raise SinkError(f"{self.path}: could not write the image; check the name and free space")


def as_bgr(frame):
    """Frames that are not 8-bit BGR (gray, BGRA, 16-bit) become 8-bit BGR for writing."""
    if getattr(frame, "ndim", 0) == 3 and frame.shape[2] == 3 and frame.dtype == "uint8":
        return frame
    gray = to_gray(frame)
    return None if gray is None else cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)


class CsvLog:
    """One row per face per frame; `source` names the image (or video) file the frame came from."""

    def __init__(self, path, labels):
        check_writable(path, "--log")
        self.file = open(path, "w", newline="")
        self.writer = csv.writer(self.file)
        self.writer.writerow(["frame", "source", "time_s", "track_id", "x", "y", "w", "h", "emotion", "confidence",
                              *labels])
        self.labels = labels

    def write(self, frame_index, time_s, tracks, source=None):
        name = Path(source).name if source else ""  # a camera has no file
        for track in tracks:
            emotion, confidence = label_text(track, self.labels)
            x, y, w, h = (int(v) for v in track.box)
            self.writer.writerow([frame_index, name, f"{time_s:.3f}", track.id, x, y, w, h, emotion,
                                  f"{confidence:.4f}", *(f"{p:.4f}" for p in track.probabilities)])

    def close(self):
        self.file.close()


class EmotionTimeline:
    """--summary: each tracked face's emotion over time, plotted when the run ends."""

    def __init__(self, path, labels):
        check_plot_path(path, "--summary")
        self.path, self.labels, self.rows = Path(path), labels, []

    def write(self, frame_index, time_s, tracks, source=None):
        for track in tracks:
            self.rows.append((time_s, f"face {track.id}", label_text(track, self.labels)[0]))

    def _table(self):
        import pandas as pd
        table = pd.DataFrame(self.rows, columns=["time_s", "face", "emotion"])
        table["emotion"] = pd.Categorical(table["emotion"], categories=self.labels)  # plotted in label order
        return table

    def summary(self):
        """One line: each face's most frequent emotion and how often it held."""
        if not self.rows:
            return "no faces seen"
        parts = []
        for face, rows in self._table().groupby("face", sort=False, observed=True):
            counts = rows["emotion"].value_counts()
            parts.append(f"{face}: {counts.index[0]} {counts.iloc[0] / len(rows):.0%} of {plural(len(rows), 'frame')}")
        return "; ".join(parts)

    def figure(self):
        """The plot: one line per face, each its own colour, the legend beside the plot, not over the lines."""
        import matplotlib
        matplotlib.use("Agg")  # files only: no window, works headless
        import matplotlib.pyplot as plt
        import seaborn as sns

        table = self._table()
        faces = list(dict.fromkeys(table["face"]))
        columns = max(1, -(-len(faces) // 14))  # a long legend wraps into columns beside the plot
        figure, axis = plt.subplots(figsize=(9 + 1.1 * columns, 3.5))
        if len(table):
            table["emotion"] = table["emotion"].cat.codes
            # seaborn's default palette repeats after ten faces: tab20 holds twenty, husl any number
            palette = "tab10" if len(faces) <= 10 else "tab20" if len(faces) <= 20 else "husl"
            sns.lineplot(table, x="time_s", y="emotion", hue="face", drawstyle="steps-post", ax=axis,
                         palette=sns.color_palette(palette, len(faces)), hue_order=faces)
            axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0, ncols=columns, fontsize=8,
                        frameon=False)
        axis.set_yticks(range(len(self.labels)), self.labels)
        axis.set_ylim(-0.5, len(self.labels) - 0.5)
        axis.set_xlabel("time (s)")
        axis.set_title("Emotion of each tracked face over time" if len(table) else "No faces seen")
        figure.tight_layout()
        return figure

    def close(self):
        import matplotlib.pyplot as plt

        figure = self.figure()
        figure.savefig(self.path, dpi=100)
        plt.close(figure)


class Window:
    """An OpenCV window; show() returns 'quit', 'pause' or None, and saves a PNG when s is pressed."""

    def __init__(self, title="Facial expression recognition (Esc or q quits)", snapshot_folder="."):
        self.title, self.snapshot_folder, self.snapshots = title, Path(snapshot_folder), 0
        cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE)

    def show(self, frame, wait_ms=1):
        """Show `frame` for wait_ms (a key ends the wait early)."""
        key = self._key(frame, wait_ms)
        if key is None or key in (ESC, ord("q"), ord("Q")):
            return "quit"  # a quit key, or closed with the mouse
        if key == ord(" "):
            return "pause"
        return None

    def hold(self, frame):
        """While paused: wait for space (resume, None) or a quit key ('quit')."""
        while True:
            action = self.show(frame, wait_ms=50)
            if action in ("pause", "quit"):
                return None if action == "pause" else action

    def linger(self, frame):
        """At the end of a file: keep its last frame up until any key (s still saves a snapshot)."""
        cv2.setWindowTitle(self.title, f"{self.title} - finished, press any key")
        while True:
            key = self._key(frame, 100)
            if key is None or key not in (NO_KEY, ord("s"), ord("S")):
                return

    def _key(self, frame, wait_ms):
        """The key pressed while `frame` is shown (NO_KEY: none); None once the window is closed."""
        cv2.imshow(self.title, frame)
        key = cv2.waitKey(wait_ms)
        key = NO_KEY if key == NO_KEY else key & 0xFF
        if key in (ord("s"), ord("S")):
            self._snapshot(frame)  # handled here, so it works while paused and at the end too
        if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            return None  # closed with the mouse
        return key

    def _snapshot(self, frame):
        self.snapshots += 1
        path = self.snapshot_folder / f"snapshot-{time.strftime('%Y%m%d-%H%M%S')}-{self.snapshots}.png"
        if cv2.imwrite(str(path), frame):
            print(f"saved {path}", flush=True)
        else:
            print(f"could not save {path}; check that the folder is writable", file=sys.stderr)

    def close(self):
        cv2.destroyWindow(self.title)
        cv2.waitKey(1)
