"""The pure core: decisions from events, no I/O and no clock reads."""
