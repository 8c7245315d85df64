"""azimg.disk."""
