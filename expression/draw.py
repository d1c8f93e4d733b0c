"""Draw the overlay: a box coloured by emotion, its label and confidence, optional bars, FPS.

draw_faces lays out all of a frame's faces at once: each label (and --bars panel) goes above its
box, or below, inside, beside, wherever it covers no other face's box and no other label or
panel, and stays inside the frame. Where no place is free, the one covering least is taken.
"""
import cv2
import numpy as np

from .labels import COLORS

FONT = cv2.FONT_HERSHEY_SIMPLEX
BAR_WIDTH = 60  # pixels at a 640x480 frame's text size; bars grow with the text on larger pictures
MIN_SCALE = 0.45  # the smallest label text: about 10 px high, still legible with a 1 px stroke


def label_text(track, labels):
    """The emotion shown for a track and its probability: always the top one of its (smoothed) probabilities,
    so the name and the number beside it never disagree."""
    best = int(np.argmax(track.probabilities))
    return labels[best], float(track.probabilities[best])


def draw_faces(frame, tracks, labels, bars=False):
    """Draw every face of one frame, labels and panels placed clear of the other faces."""
    placed = layout(frame.shape, tracks, labels, bars)
    for s in placed:
        x, y, w, h = s["box"]
        cv2.rectangle(frame, (x, y), (x + w, y + h), s["colour"], s["thick"])
    for track, s in zip(tracks, placed):
        _draw_label(frame, s)
        if bars:
            _draw_bars(frame, track, labels, *s["bars"][:2], s["scale"] * 0.7)


def layout(shape, tracks, labels, bars=False):
    """Per track: its box, and where its label (and bars panel) go, as x, y, w, h rectangles
    ("label", "bars"), with the colour and sizes to draw them in."""
    placed = [_style(shape, track, labels, bars) for track in tracks]
    taken = []  # labels and panels placed so far
    for k, s in enumerate(placed):
        others = [t["box"] for j, t in enumerate(placed) if j != k]
        s["label"] = (*place(_label_spots(s), s["label_size"], others + taken, shape), *s["label_size"])
        taken.append(s["label"])
    if bars:  # after all labels, so that a panel never takes the place a label needs
        for k, s in enumerate(placed):
            others = [t["box"] for j, t in enumerate(placed) if j != k]
            s["bars"] = (*place(_bars_spots(s), s["bars_size"], others + taken + [s["box"]], shape), *s["bars_size"])
            taken.append(s["bars"])
    return placed


def draw_face(frame, track, labels, bars=False):
    """One face on its own (draw_faces keeps the labels of several faces apart)."""
    draw_faces(frame, [track], labels, bars)


def _style(shape, track, labels, bars):
    x, y, w, h = (int(v) for v in track.box)
    emotion, confidence = label_text(track, labels)
    thick = max(2, round(min(shape[:2]) / 240))
    # Text as big as the frame allows, but not much wider than a small face, and never below MIN_SCALE:
    # the label then goes outside the box (see _label_spots) rather than shrinking into a blot.
    scale = max(MIN_SCALE, min(min(shape[:2]) / 800, w / 100))
    text = f"{emotion} {confidence:.0%}"
    stroke = _stroke(scale)
    (tw, th), base = cv2.getTextSize(text, FONT, scale, stroke)
    pad = max(3, round(4 * scale))
    style = {"box": (x, y, w, h), "colour": COLORS.get(emotion, (255, 255, 255)), "thick": thick, "scale": scale,
             "stroke": stroke, "pad": pad, "text": text, "text_size": (tw, th, base),
             "label_size": (tw + 2 * pad, th + base + pad + 2)}
    if bars:
        name_width, row, bar_width = _bars_metrics(scale * 0.7)
        style["bars_size"] = (name_width + 6 + bar_width + 3, row * len(labels) + 3)
    return style


def _stroke(scale):
    """Text stroke width: 1 px up to a 640x480 frame's size; a bold stroke on small text fills the letters
    in ("sad" read "sod")."""
    return max(1, round(scale * 1.2))


def _bars_metrics(scale):
    """(name column width, row height, bar length) of a --bars panel at this text scale."""
    (name_width, row), _ = cv2.getTextSize("surp", FONT, scale, _stroke(scale))
    # At a 640x480 frame's size (scale 0.42) and below, the compact panel; larger pictures scale it up.
    return name_width, row + max(6, round(7 * scale)), round(BAR_WIDTH * max(1.0, scale / 0.6))


def _label_spots(s):
    """Where a label may go, best first: above the box, below it, inside its top, beside it."""
    x, y, w, h = s["box"]
    lw, lh = s["label_size"]
    half = s["thick"] // 2 + 1
    return [(x, y - lh - half), (x, y + h + half), (x + half, y + half), (x + w + half, y), (x - lw - half, y),
            (x + w + half, y + h - lh), (x - lw - half, y + h - lh)]


def _bars_spots(s):
    """Where a bars panel may go, best first: right of the box, left of it, below, above."""
    x, y, w, h = s["box"]
    pw, ph = s["bars_size"]
    gap = s["thick"] + 4
    return [(x + w + gap, y), (x - pw - gap, y), (x + w + gap, y + h - ph), (x - pw - gap, y + h - ph),
            (x, y + h + gap), (x, y - ph - gap)]


def place(spots, size, obstacles, shape, margin=2):
    """Top-left corner for a rectangle of `size` (w, h): the first of `spots` that, moved inside the
    frame, covers none of `obstacles` (x, y, w, h, each grown by `margin`); else the free place
    nearest the first spot within 3 times the rectangle's size; else the spot covering least."""
    width, height = size
    limit = (max(0, shape[1] - width), max(0, shape[0] - height))
    grown = np.array(obstacles, float).reshape(-1, 4) + (-margin, -margin, 2 * margin, 2 * margin)
    candidates = np.clip(np.array(spots, float).reshape(-1, 2), 0, limit).astype(int)
    covered = _covered(candidates, size, grown)
    if (covered == 0).any():
        return tuple(int(v) for v in candidates[np.argmax(covered == 0)])
    x0, y0 = candidates[0]
    reach, step = 3 * max(width, height), max(4, min(width, height) // 3)
    xs = np.arange(max(0, x0 - reach), min(limit[0], x0 + reach) + 1, step)
    ys = np.arange(max(0, y0 - reach), min(limit[1], y0 + reach) + 1, step)
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    free = grid[_covered(grid, size, grown) == 0]
    if len(free):
        return tuple(int(v) for v in free[np.argmin(np.hypot(*(free - (x0, y0)).T))])
    return tuple(int(v) for v in candidates[np.argmin(covered)])


def _covered(corners, size, obstacles):
    """Area of `obstacles` covered by a rectangle of `size` at each of `corners` (N x 2)."""
    if len(obstacles) == 0:
        return np.zeros(len(corners))
    x0 = np.maximum(corners[:, None, 0], obstacles[None, :, 0])
    y0 = np.maximum(corners[:, None, 1], obstacles[None, :, 1])
    x1 = np.minimum(corners[:, None, 0] + size[0], obstacles[None, :, 0] + obstacles[None, :, 2])
    y1 = np.minimum(corners[:, None, 1] + size[1], obstacles[None, :, 1] + obstacles[None, :, 3])
    return (np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)).sum(axis=1)


def _draw_label(frame, s):
    """The label on a patch of the emotion's colour, black text: readable on any background."""
    lx, ly, lw, lh = s["label"]
    tw, th, base = s["text_size"]
    cv2.rectangle(frame, (lx, ly), (lx + lw, ly + lh), s["colour"], cv2.FILLED)
    cv2.putText(frame, s["text"], (lx + s["pad"], ly + th + s["pad"] // 2 + 1), FONT, s["scale"], (0, 0, 0),
                s["stroke"], cv2.LINE_AA)


def _draw_bars(frame, track, labels, x, y, scale):
    """One row per emotion: its name, then a bar as long as its probability, on a dark backing so
    that the white names read on a white shirt or a bright sky as well as on a dark room."""
    name_width, row, bar_width = _bars_metrics(scale)
    stroke = _stroke(scale)
    width, height = name_width + 6 + bar_width + 3, row * len(labels) + 3
    x0, y0, x1, y1 = max(0, x), max(0, y), min(frame.shape[1], x + width), min(frame.shape[0], y + height)
    if x1 > x0 and y1 > y0:  # darken what is behind the panel to a quarter: the scene still shows through
        frame[y0:y1, x0:x1] = (frame[y0:y1, x0:x1] * 0.25 + 20).astype(frame.dtype)
    for i, (name, p) in enumerate(zip(labels, track.probabilities)):
        top = y + 1 + i * row
        cv2.putText(frame, name[:4], (x + 3, top + row - max(4, row // 4)), FONT, scale, (255, 255, 255), stroke,
                    cv2.LINE_AA)
        left = x + 3 + name_width + 3
        cv2.rectangle(frame, (left, top + 2), (left + bar_width, top + row - 2), (110, 110, 110), 1)
        cv2.rectangle(frame, (left, top + 2), (left + int(bar_width * float(p)), top + row - 2),
                      COLORS.get(name, (255, 255, 255)), cv2.FILLED)


def draw_status(frame, fps, latency_ms):
    text = f"{fps:5.1f} FPS  {latency_ms:5.1f} ms"
    cv2.putText(frame, text, (9, 23), FONT, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(frame, text, (8, 22), FONT, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
