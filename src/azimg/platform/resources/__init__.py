"""azimg.platform.resources."""
