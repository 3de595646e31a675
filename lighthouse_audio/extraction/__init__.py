"""``lighthouse extract``: recordings and queries -> Lighthouse-layout features + manifest."""
