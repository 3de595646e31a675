"""``python -m lighthouse_audio ...`` is the ``lighthouse`` command."""

import sys

from lighthouse_audio.cli.main import main

sys.exit(main())
