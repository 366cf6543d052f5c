"""The demo: public-domain faces, painted blinks, scenes on simulated hardware."""
