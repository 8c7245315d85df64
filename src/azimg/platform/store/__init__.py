"""azimg.platform.store."""
