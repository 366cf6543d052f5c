"""Cryptography of the terminal: canonical JSON and Ed25519 signing, key files, PIN blocks."""
