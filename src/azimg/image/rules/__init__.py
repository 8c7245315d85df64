"""azimg.image.rules."""
