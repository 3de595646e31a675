"""The ``lighthouse demo`` pipeline: real captioned sounds to a trained, tested AM-DETR, offline.

``sources`` (the shipped manifest of sounds inside Debian packages), ``debian`` (rebuilding them
with apt), ``sound_set`` (reading a ``shared/sounds``-like folder), ``split`` (train/val/test by
recording), ``baseline`` (chance level), ``picture`` (true vs predicted moments) and ``pipeline``
(the six steps). Heavy imports (torch, matplotlib) happen inside the functions that need them.
"""
