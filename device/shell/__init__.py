"""The imperative shell: the main loop, the worker threads around it, the effect executor."""
