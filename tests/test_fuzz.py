"""Frames of any shape or type and files of random bytes never crash the live loop or the loader."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from expression.data import decode_face
from expression.detect import FaceDetector
from expression.spread import SpreadScan
from expression.labels import EMOTIONS
from expression.live import LivePipeline
from expression.model import build_model
from expression.sink import as_bgr
from expression.source import SourceError, open_source, read_image

DTYPES = st.sampled_from([np.uint8, np.uint16, np.int32, np.float32, np.float64, np.bool_])
SHAPES = st.one_of(hnp.array_shapes(min_dims=0, max_dims=1, min_side=0, max_side=8),
                   hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=96),
                   st.tuples(st.integers(0, 96), st.integers(0, 96), st.integers(0, 5)),
                   hnp.array_shapes(min_dims=4, max_dims=4, min_side=1, max_side=3))


@pytest.fixture(scope="module")
def pipeline():
    return LivePipeline(build_model(width=4), list(EMOTIONS))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=hnp.arrays(DTYPES, SHAPES))  # any values of the dtype, NaN and infinities included
def test_any_frame_passes_through_the_pipeline(pipeline, frame):
    tracks = pipeline.process(frame)
    assert isinstance(tracks, list)
    written = as_bgr(frame)
    assert written is None or (written.dtype == np.uint8 and written.ndim == 3 and written.shape[2] == 3)


def test_huge_and_odd_frames(pipeline):
    for frame in (np.zeros((3000, 4000, 3), np.uint8), np.full((480, 640, 4), 200, np.uint8),
                  np.full((480, 640), 40000, np.uint16), np.zeros((1, 1, 3), np.uint8), np.zeros((0,), np.uint8)):
        pipeline.process(frame)


SPREAD = SpreadScan(FaceDetector(), 3)


@settings(max_examples=500, deadline=None)
@given(gray=hnp.arrays(np.uint8, st.tuples(st.integers(1, 120), st.integers(1, 160))),
       near=hnp.arrays(np.int64, st.tuples(st.integers(0, 4), st.just(4)), elements=st.integers(-500, 500)))
def test_search_around_any_boxes_never_crashes(gray, near):
    # Tracked boxes come from earlier frames: they may lie outside this one, or be empty.
    # One spread scan across all examples: frames of any size follow each other.
    boxes = SPREAD.detector.detect(gray, near=near, scan=SPREAD)
    assert boxes.shape[1:] == (4,) and boxes.dtype.kind == "i"


@settings(max_examples=1500, deadline=None)
@given(data=st.binary(max_size=2048), header=st.sampled_from([b"", b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n"]))
def test_random_bytes_as_image_files(data, header, tmp_path_factory):
    blob = header + data
    image, note = decode_face(blob)
    assert (image is None and isinstance(note, str)) or image.shape == (48, 48)
    path = tmp_path_factory.mktemp("bytes") / "random.jpg"
    path.write_bytes(blob)
    frame = read_image(path)
    if frame is None:
        with pytest.raises(SourceError, match="not a readable image"):
            open_source(path)
