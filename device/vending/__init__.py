"""The terminal as a vending machine's cashless payment device (issue 13; docs/vending.md).

An adapter room like device/hw, importing only device.core, device.clock and
device.errors from the terminal:
- `port.py`: the one interface the terminal sees (a Protocol and its event dataclasses);
- `mdb/`: the MDB/ICP cashless device, and the VMC's side of it, as pure code;
- `sim.py`: in-process scripted controller (the real MDB device, no bus) for demo/tests;
- `uart.py` + `ninebit.py`: raw 9-bit UART, this process answers the bus;
- `hat.py`: a Qibixx MDB Pi HAT in cashless-slave mode, its firmware answers the bus;
- `config.py` / `factory.py`: the [vending] section and the controller it names;
- `bridge.py`: port events to session events, session effects to controller calls;
- `vmc_sim.py`, `hat_sim.py`, `scenarios.py`, `vmc_bench.py`: `blinkpay mdb-sim`;
- `vmc_machine.py`: a whole scripted vending machine on a pty (the demo, end-to-end tests).
"""
