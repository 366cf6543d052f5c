"""The terminal as a vending machine's cashless payment device (issue 13).

An adapter room like device/hw: `port.py` is the one interface the terminal sees (a
Protocol and its event dataclasses); `sim.py` is an in-process scripted controller for the
demo and tests; `mdb/` is the MDB/ICP cashless device as pure code; `uart.py` and `hat.py`
carry it over a serial port (raw 9-bit UART, or a Qibixx MDB Pi HAT's own line protocol);
`vmc_sim.py` plays the vending machine's side over a pseudo-terminal. This package may
import device.core, device.clock and device.errors, nothing else of the terminal.
"""
