"""MDB/ICP (Multi-Drop Bus / Internal Communication Protocol, NAMA/EVA version 4.x) as pure
code: bytes and the time in, bytes and events out. No I/O, no clock reads."""
