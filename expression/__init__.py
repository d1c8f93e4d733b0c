"""Facial expression recognition: shared code behind train.py and realtime.py.

Training side, in the order the data flows: data -> augment -> model -> fit -> report.
Live side: source -> detect -> classify -> track -> draw -> sink.
`labels` and `model_files` are shared by both sides.
"""
