"""azimg.platform.arm."""
