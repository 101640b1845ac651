"""The installed package's version, read from its metadata so ``pyproject.toml`` is the one
place it is written (and so modules that report it need not import the whole package)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("olmp")
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"
