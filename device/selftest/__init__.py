"""Self-test: every subsystem's checks in one place (hardware, models, store, broker), run by
`blinkpay selftest`, `blinkpay db verify` and the remote `selftest` command."""
