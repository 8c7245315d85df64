"""azimg.image.build."""
