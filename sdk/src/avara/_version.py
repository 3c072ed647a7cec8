"""The distribution's version, sent in the User-Agent header."""

__title__ = "avara"
__version__ = "0.1.0"
