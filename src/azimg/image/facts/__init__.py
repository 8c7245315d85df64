"""Facts about a guest, one module per kind; ``image/inspect.py`` gathers them all."""
