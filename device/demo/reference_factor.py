"""Provisional: replaced by the measured reference factor."""

HOST_TO_PI4 = 8.0
