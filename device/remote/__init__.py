"""Remote commands and config/set on the running terminal (`blinkpay run`).

device.net checks what arrives (signature, target, freshness, replay) and publishes the
answers; this room does what the host asked with the terminal's own parts: the self-test
on the running hardware and store, one gate pulse while the session is idle, a clean
restart (or, when configured, an OS reboot), and a config change validated with the
terminal's own model, persisted to the remote overlay and applied live or by a restart.
Anything that touches the session or the hardware runs on the main loop's thread.
"""
