"""The seven FER2013 emotions, in FER2013's label order (not alphabetical)."""

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# Display colours (BGR, for OpenCV), one per emotion, chosen to be told apart at a glance.
COLORS = {
    "angry": (40, 40, 230),
    "disgust": (40, 140, 40),
    "fear": (160, 60, 160),
    "happy": (30, 200, 250),
    "sad": (200, 120, 30),
    "surprise": (0, 140, 255),
    "neutral": (190, 190, 190),
}


def label_of_folder(name):
    """FER2013 label index for an emotion folder name (case-insensitive), or None if unknown."""
    try:
        return EMOTIONS.index(name.strip().lower())
    except ValueError:
        return None
