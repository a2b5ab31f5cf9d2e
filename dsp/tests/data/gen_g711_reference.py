#!/usr/bin/env python3
"""Generate g711_audioop.bin, the independent G.711 reference used by tests/g711_reference.rs.

Run once with CPython 3.11 (audioop was removed in 3.13):
    python3 dsp/tests/data/gen_g711_reference.py dsp/tests/data/g711_audioop.bin

Layout (all little-endian):
  65536 bytes  A-law code of every 16-bit input, from -32768 up to 32767
  65536 bytes  u-law code of every 16-bit input, same order
  512 bytes    256 x int16: A-law code 0..255 decoded
  512 bytes    256 x int16: u-law code 0..255 decoded
"""
import audioop
import struct
import sys

pcm = b"".join(struct.pack("<h", x) for x in range(-32768, 32768))
codes = bytes(range(256))
out = audioop.lin2alaw(pcm, 2) + audioop.lin2ulaw(pcm, 2)
out += audioop.alaw2lin(codes, 2) + audioop.ulaw2lin(codes, 2)
with open(sys.argv[1], "wb") as f:
    f.write(out)
