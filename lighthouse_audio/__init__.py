"""lighthouse-audio: language-based audio moment retrieval, compatible with Lighthouse."""

__version__ = "0.1.0"
