"""Labels and bars panels go where they cover no other face's box, label or panel."""
import numpy as np
import pytest

from expression.draw import draw_faces, label_text, layout
from expression.labels import EMOTIONS
from expression.track import Track

FACE_GRAY = 77  # what the inside of each face box is filled with before drawing


def tracks_at(boxes):
    return [Track(k + 1, box, np.eye(len(EMOTIONS), dtype=np.float32)[k % len(EMOTIONS)]) for k, box in enumerate(boxes)]


def overlap(a, b):
    return max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])) * max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))


def check_layout(shape, boxes, bars):
    tracks = tracks_at(boxes)
    placed = layout(shape, tracks, list(EMOTIONS), bars)
    drawn = [("label", k, s["label"]) for k, s in enumerate(placed)]
    drawn += [("bars", k, s["bars"]) for k, s in enumerate(placed)] if bars else []
    for kind, k, (x, y, w, h) in drawn:
        assert 0 <= x and 0 <= y and x + w <= shape[1] and y + h <= shape[0], (kind, k)  # inside the frame
        for j, box in enumerate(boxes):
            if j != k:
                assert overlap((x, y, w, h), box) == 0, (kind, k, "covers face", j)
        for other_kind, j, rect in drawn:
            if (other_kind, j) != (kind, k):
                assert overlap((x, y, w, h), rect) == 0, (kind, k, "covers", other_kind, j)
    return tracks, placed


@pytest.mark.parametrize("bars", [False, True])
def test_two_close_faces_keep_their_labels_and_bars_apart(bars):
    boxes = [(200, 150, 90, 90), (300, 150, 90, 90)]  # 10 px apart, side by side
    tracks, placed = check_layout((480, 640), boxes, bars)
    # The pixels: each face's inside shows only its own label, if any; the other face's drawing never.
    frame = np.zeros((480, 640, 3), np.uint8)
    for x, y, w, h in boxes:
        frame[y + 4:y + h - 3, x + 4:x + w - 3] = FACE_GRAY
    draw_faces(frame, tracks, list(EMOTIONS), bars)
    for k, (x, y, w, h) in enumerate(boxes):
        inside = np.ones((h - 7, w - 7), bool)
        own = [placed[k]["label"]] + ([placed[k]["bars"]] if bars else [])
        for lx, ly, lw, lh in own:
            inside[max(0, ly - y - 4):max(0, ly + lh + 1 - y - 4), max(0, lx - x - 4):max(0, lx + lw + 1 - x - 4)] = False
        assert (frame[y + 4:y + h - 3, x + 4:x + w - 3][inside] == FACE_GRAY).all(), k


def test_the_label_goes_above_the_box_where_there_is_room():
    (s,) = layout((480, 640), tracks_at([(200, 150, 90, 90)]), list(EMOTIONS))
    x, y, w, h = s["label"]
    assert x == 200 and y + h < 150


@pytest.mark.parametrize("boxes", [
    [(0, 0, 100, 100), (110, 0, 100, 100)],  # at the top edge: no room above
    [(540, 380, 100, 100), (430, 380, 100, 100)],  # in the bottom right corner
    [(20 + 105 * k, 180, 95, 95) for k in range(6)],  # a row of six, 10 px apart
    [(60, 60, 60, 60), (125, 60, 60, 60), (60, 125, 60, 60), (125, 125, 60, 60)],  # a block of four
])
def test_crowded_faces_get_labels_and_panels_that_cover_no_other_face(boxes):
    check_layout((480, 640), boxes, bars=True)


def test_the_label_shown_is_the_top_probability_shown():
    track = tracks_at([(0, 0, 50, 50)])[0]
    track.probabilities = np.array([0.1, 0, 0, 0.5, 0.3, 0.1, 0], np.float32)
    assert label_text(track, list(EMOTIONS)) == ("happy", pytest.approx(0.5))


@pytest.mark.parametrize("background", [255, 0], ids=["white", "black"])
def test_labels_and_bar_names_stand_out_on_a_light_and_a_dark_background(background):
    frame = np.full((480, 640, 3), background, np.uint8)
    track = tracks_at([(250, 180, 90, 90)])[0]
    (s,) = layout(frame.shape, [track], list(EMOTIONS), bars=True)
    draw_faces(frame, [track], list(EMOTIONS), bars=True)
    x, y, w, h = s["bars"]
    panel = frame[y:y + h, x:x + w].max(axis=2)
    # The names are white on a backing dark enough to read them: most of the panel is dark, the text bright.
    assert np.median(panel) < 90 and (panel > 220).mean() > 0.02, (np.median(panel), (panel > 220).mean())
    lx, ly, lw, lh = s["label"]
    label = frame[ly:ly + lh, lx:lx + lw].astype(int)
    colour = np.array(s["colour"])
    # The label is its emotion's colour with black text, whatever lies behind it.
    assert (np.abs(label - colour).sum(axis=2) < 10).mean() > 0.5 and (label.max(axis=2) < 60).mean() > 0.05


def test_text_and_panel_grow_with_the_picture_and_small_faces_keep_a_legible_label():
    track = tracks_at([(100, 100, 60, 60)])[0]
    (small,) = layout((480, 640), [track], list(EMOTIONS), bars=True)
    big_track = tracks_at([(400, 400, 400, 400)])[0]
    (big,) = layout((1536, 2048), [big_track], list(EMOTIONS), bars=True)
    assert big["label_size"][1] > 2 * small["label_size"][1]  # a 2048 px photo gets text to match
    assert big["bars_size"][0] > 2 * small["bars_size"][0] and big["bars_size"][1] > 2 * small["bars_size"][1]
    tiny_track = tracks_at([(300, 200, 24, 24)])[0]
    (tiny,) = layout((1080, 1920), [tiny_track], list(EMOTIONS))
    assert tiny["scale"] >= 0.45 and tiny["stroke"] == 1  # a thin stroke: no blot on small text
    x, y, w, h = tiny["label"]
    assert overlap((x, y, w, h), (300, 200, 24, 24)) == 0  # outside the small face, not over it
