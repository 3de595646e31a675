"""``python -m lighthouse_audio.train ARGS`` is ``lighthouse train ARGS``: the entry point for
data-parallel training, ``torchrun --nproc_per_node N -m lighthouse_audio.train --dataset ...``
(``engine/distributed.py``)."""

import sys

from lighthouse_audio.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
