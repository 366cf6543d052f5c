"""Reference payment host for tests and the demo (a real operator replaces it)."""
