"""The chaos bench (`blinkpay bench chaos`): payment integrity against real processes."""
