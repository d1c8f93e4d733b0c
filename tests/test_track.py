"""Tracks keep one ID per person, through short gaps, and labels change only when the expression does."""
import cv2
import numpy as np
import pytest

from expression.labels import EMOTIONS
from expression.track import FaceTracker


def probabilities(**emotions):
    """A probability vector with the named emotions' values and the rest shared out evenly."""
    p = np.zeros(len(EMOTIONS), np.float32)
    for name, value in emotions.items():
        p[EMOTIONS.index(name)] = value
    rest = [i for i, name in enumerate(EMOTIONS) if name not in emotions]
    p[rest] = (1 - p.sum()) / len(rest)
    return p


def walk(faces, frames, hidden=(), step=6, size=120):
    """640x480 BGR frames of two real faces walking right (the second one row lower); the first is
    not drawn in the frames listed in `hidden`. Returns frames and each face's true box per frame."""
    out, truth = [], []
    for i in range(frames):
        frame, boxes = np.full((480, 640), 110, np.uint8), []
        for k, face in enumerate(faces[:2]):
            x, y = 20 + step * i, 40 + 250 * k
            if not (k == 0 and i in hidden):
                frame[y:y + size, x:x + size] = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC)
            boxes.append((x, y, size, size))
        out.append(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
        truth.append(boxes)
    return out, truth


def ids_per_face(frames, truth):
    """Run the live pipeline (an untrained model: only boxes and IDs matter); IDs seen on each face."""
    from expression.boxes import iou
    from expression.live import LivePipeline
    from expression.model import build_model

    pipeline = LivePipeline(build_model(width=4), list(EMOTIONS), rescan=8)
    ids, shown = ({0: [], 1: []}), []
    for frame, boxes in zip(frames, truth):
        tracks = pipeline.process(frame)
        shown.append(len(tracks))
        for track in tracks:
            face = int(np.argmax([iou(track.box, box) for box in boxes]))
            ids[face].append(track.id)
    return ids, shown


def test_a_face_hidden_for_under_a_second_keeps_its_id(detectable_faces):
    # The first face vanishes for 20 frames (0.8 s at 25 frames/s) while walking 6 px a frame,
    # and comes back 120 px further on: it is found again where it was heading, under its old ID.
    frames, truth = walk(detectable_faces, 60, hidden=range(15, 35))
    ids, shown = ids_per_face(frames, truth)
    assert len(set(ids[0])) == 1 and len(set(ids[1])) == 1 and ids[0][0] != ids[1][0], ids
    assert len(ids[0]) >= 15 + 20  # seen before and after the gap (within the spread scan's 8 frames)
    assert all(count == 1 for count in shown[16:35])  # nothing drawn where the hidden face was


def test_a_face_gone_for_longer_comes_back_as_a_new_person(detectable_faces):
    frames, truth = walk(detectable_faces[:2], 60, hidden=range(10, 45), step=4)
    ids, _ = ids_per_face(frames, truth)
    assert len(set(ids[0])) == 2 and len(set(ids[1])) == 1, ids


def test_the_detector_stops_searching_where_a_face_was_lost_but_the_tracker_remembers_it():
    tracker = FaceTracker(max_missed=5, remember=25)
    p = probabilities(happy=0.8)
    for i in range(5):
        tracker.update([(100 + 10 * i, 100, 60, 60)], [p])
    for i in range(5, 12):  # missed: searched for where it is heading for 5 frames, then not at all
        tracker.update([], [])
        assert len(tracker.tracks) == (1 if i < 10 else 0)
        if tracker.tracks:
            assert tracker.tracks[0].box[0] == pytest.approx(100 + 10 * i, abs=1)
    (back,) = tracker.update([(100 + 10 * 12, 102, 64, 64)], [p])  # 8 frames on, where it was heading
    assert back.id == 1 and tracker.next_id == 2 and back.missed == 0 and back in tracker.tracks
    # Far from where it was heading, or of another size, it is someone else.
    for box in [(600, 400, 64, 64), (130, 100, 150, 150)]:
        fresh = FaceTracker(max_missed=1)
        fresh.update([(100, 100, 60, 60)], [p])
        fresh.update([], []), fresh.update([], [])
        assert fresh.update([box], [p])[0].id == 2


def test_two_faces_keep_their_ids_when_they_pass_close_by():
    tracker = FaceTracker()
    p = probabilities(neutral=0.7)
    for i in range(30):  # one walks right, one left, on rows 70 px apart: their boxes never overlap much
        a, b = (50 + 15 * i, 100, 60, 60), (500 - 15 * i, 170, 60, 60)
        seen = tracker.update([b, a], [p, p])
        assert [track.id for track in seen] == [1, 2]


def test_the_label_is_always_the_top_smoothed_probability_steady_through_noise_and_quick_to_change():
    tracker = FaceTracker()  # smooth 0.9
    box = (100, 100, 80, 80)
    tracker.update([box], [probabilities(happy=0.5, surprise=0.3)])
    shown = []
    for i in range(40):  # every third frame surprise leads; on average happy does
        p = probabilities(happy=0.5, surprise=0.3) if i % 3 else probabilities(happy=0.3, surprise=0.5)
        (track,) = tracker.update([box], [p])
        assert track.label == int(track.probabilities.argmax())  # the label never disagrees with its numbers
        shown.append(track.label)
    assert set(shown) == {EMOTIONS.index("happy")}
    # A clear change shows within 7 frames, and from then on it stays.
    shown = [tracker.update([box], [probabilities(angry=0.8)])[0].label for _ in range(10)]
    assert shown[6:] == [EMOTIONS.index("angry")] * 4, shown


def test_without_smoothing_each_frame_shows_its_own_top_emotion():
    tracker = FaceTracker(smooth=0)
    for emotion in ("happy", "sad", "happy", "fear"):
        (track,) = tracker.update([(0, 0, 50, 50)], [probabilities(**{emotion: 0.4})])
        assert EMOTIONS[track.label] == emotion and track.probabilities[track.label] == pytest.approx(0.4)


def test_the_timeline_gives_every_face_its_own_colour_and_keeps_the_legend_off_the_lines(tmp_path):
    from types import SimpleNamespace

    from expression.sink import EmotionTimeline

    timeline = EmotionTimeline(tmp_path / "summary.png", list(EMOTIONS))
    for frame in range(30):  # 12 faces, more than seaborn's default palette has colours
        tracks = [SimpleNamespace(id=k + 1, probabilities=probabilities(**{EMOTIONS[(k + frame // 10) % 7]: 0.6}))
                  for k in range(12)]
        timeline.write(frame, frame / 10, tracks)
    figure = timeline.figure()
    axis = figure.axes[0]
    colours = {tuple(np.round(line.get_color(), 3)) for line in axis.get_lines() if line.get_label().startswith("face")}
    assert len(colours) == 12
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    legend, plot = axis.get_legend().get_window_extent(renderer), axis.get_window_extent(renderer)
    assert legend.x0 >= plot.x1  # beside the plot, covering none of it
    assert legend.x1 <= figure.get_window_extent(renderer).x1 + 1  # and inside the picture
    timeline.close()
    assert (tmp_path / "summary.png").stat().st_size > 0
