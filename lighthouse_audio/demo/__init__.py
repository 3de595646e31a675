"""The ``lighthouse demo`` pipeline: real captioned sounds to a trained, tested AM-DETR, offline.

``debian_sources`` (the shipped manifest of sounds inside Debian packages), ``debian`` (rebuilding
them with apt), ``sound_set`` (reading a ``shared/sounds``-like folder), ``data`` (the split by
recording, simulated training clips and 60 s test recordings, features), ``joint_prior``
(aligning a joint space on the train split), ``training`` (train, tune the score mix, test),
``baseline`` (the tuned sliding-window baseline), ``chance`` (random windows), ``picture`` (true
vs predicted moments) and ``run`` (the five steps). Heavy imports (torch, matplotlib) happen
inside the functions that need them.
"""
