"""Facial expression recognition: the shared code behind train.py and realtime.py.

Training side, in the order the data flows: data -> augment -> model -> fit -> report.
Live side: source -> detect -> classify -> track -> draw -> sink, with `live` running
one frame through detect..draw. `labels`, `model_files` and `backend` serve both sides.
"""
