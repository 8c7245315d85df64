"""azimg.platform."""
