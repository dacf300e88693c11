"""The package version, in a module of its own.

Any room can read it without importing the public API, which would make an import cycle.
"""

__version__ = "0.1.0"
