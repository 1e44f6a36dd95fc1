"""The one version number, read by the package, its metadata and its JSON documents."""

__version__ = "0.1.0"
