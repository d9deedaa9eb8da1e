"""Tertulia: a self-hostable chatbot platform server with many API faces over one core."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tertulia")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
