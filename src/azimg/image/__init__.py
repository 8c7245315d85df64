"""azimg.image."""
