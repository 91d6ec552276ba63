"""frugalml: efficient, resilient machine learning."""

__version__ = "0.1.0"
