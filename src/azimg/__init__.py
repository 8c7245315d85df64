"""azimg — Azure's Linux imaging system, real and local."""

__version__ = "0.1.0"
