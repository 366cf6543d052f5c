"""blinkpay: the software inside a face-payment terminal."""

__version__ = "0.1.0"
