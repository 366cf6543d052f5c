"""One module per CLI command; see device.cli.COMMANDS."""
