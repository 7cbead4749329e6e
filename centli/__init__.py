"""CENTLI action groups: core-banking and marketplace for an AI banking assistant."""

__version__ = "0.1.0"
