"""azimg.fabric."""
