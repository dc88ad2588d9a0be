"""nmtune service: REST API, storage, embedding cache, jobs, CLI."""

__version__ = "0.1.0"
