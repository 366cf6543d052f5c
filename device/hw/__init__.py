"""Hardware: pins over swappable factories (real RPi.GPIO or simulated), devices, cameras."""
