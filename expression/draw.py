"""Draw the overlay: a box coloured by emotion, its label and confidence, optional bars, FPS."""
import cv2

from .labels import COLORS

FONT = cv2.FONT_HERSHEY_SIMPLEX


def label_text(track, labels):
    best = int(track.probabilities.argmax())
    return labels[best], float(track.probabilities[best])


def draw_face(frame, track, labels, bars=False):
    x, y, w, h = (int(v) for v in track.box)
    emotion, confidence = label_text(track, labels)
    colour = COLORS.get(emotion, (255, 255, 255))
    thick = max(2, round(min(frame.shape[:2]) / 240))
    cv2.rectangle(frame, (x, y), (x + w, y + h), colour, thick)
    text = f"{emotion} {confidence:.0%}"
    scale = max(0.5, min(frame.shape[:2]) / 800)
    (tw, th), base = cv2.getTextSize(text, FONT, scale, 1 + thick // 2)
    top = y - th - base - 4 if y - th - base - 4 >= 0 else y + h  # above the box, or below it at the edge
    cv2.rectangle(frame, (x, top), (x + tw + 6, top + th + base + 4), colour, cv2.FILLED)
    cv2.putText(frame, text, (x + 3, top + th + 2), FONT, scale, (0, 0, 0), 1 + thick // 2, cv2.LINE_AA)
    if bars:
        _draw_bars(frame, track, labels, x + w + 6, y, scale * 0.7)


def _draw_bars(frame, track, labels, x, y, scale):
    """One row per emotion: its name, then a bar as long as its probability."""
    (name_width, row), _ = cv2.getTextSize("surp", FONT, scale, 1)
    row += 6
    for i, (name, p) in enumerate(zip(labels, track.probabilities)):
        top = y + i * row
        cv2.putText(frame, name[:4], (x, top + row - 4), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
        left = x + name_width + 4
        cv2.rectangle(frame, (left, top + 2), (left + 60, top + row - 2), (90, 90, 90), 1)
        cv2.rectangle(frame, (left, top + 2), (left + int(60 * float(p)), top + row - 2),
                      COLORS.get(name, (255, 255, 255)), cv2.FILLED)


def draw_status(frame, fps, latency_ms):
    text = f"{fps:5.1f} FPS  {latency_ms:5.1f} ms"
    cv2.putText(frame, text, (9, 23), FONT, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(frame, text, (8, 22), FONT, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
