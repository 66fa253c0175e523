"""lakescore: batch inference for the lakehouse."""

__version__ = "0.1.0"
