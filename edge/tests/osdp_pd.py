"""An OSDP peripheral device (a card reader) for edge/tests/access/osdp.rs: PyPI libosdp's
PeripheralDevice (`cargo xtask setup` installs libosdp into .venv) on an inherited file
descriptor (the master side of a pseudo-terminal whose slave is fas-edge's device).

    python osdp_pd.py FD ADDRESS

Prints `online` once the control panel polls it. Reads commands on stdin, one a line:
`card BITS HEX` reports a raw Wiegand card read of BITS bits (HEX: the bits, first bit in
the most significant bit of the first byte) and prints `sent`.
"""

import os
import sys
import time

from osdp import (CardFormat, Channel, Event, LogLevel, PDCapabilities, PDInfo,
                  PeripheralDevice)


class FdChannel(Channel):
    def __init__(self, fd):
        super().__init__()
        self.fd = fd
        os.set_blocking(fd, False)

    def read(self, max_bytes):
        try:
            return os.read(self.fd, max_bytes)
        except BlockingIOError:
            return b""

    def write(self, buf):
        try:
            return os.write(self.fd, buf)
        except BlockingIOError:
            return 0

    def flush(self):
        pass


def main():
    fd, address = int(sys.argv[1]), int(sys.argv[2])
    pd = PeripheralDevice(PDInfo(address, FdChannel(fd), name="test-reader"),
                          PDCapabilities([]), log_level=LogLevel.Warning)
    pd.start()
    deadline = time.time() + 20
    while not pd.is_online():
        if time.time() > deadline:
            print("no control panel polled within 20 s", flush=True)
            sys.exit(1)
        time.sleep(0.05)
    print("online", flush=True)
    for line in sys.stdin:
        parts = line.split()
        if parts[:1] == ["card"]:
            bits, data = int(parts[1]), bytes.fromhex(parts[2])
            pd.submit_event({
                "event": Event.CardRead,
                "reader_no": 0,
                "direction": 0,
                "format": CardFormat.Wiegand,
                "length": bits,
                "data": data,
            })
            print("sent", flush=True)
    pd.stop()


if __name__ == "__main__":
    main()
