"""Decoders that misbehave on purpose, for the importer's supervision tests (loaded in worker processes).

A file whose name contains "hang" never finishes, "segfault" kills its process the way a crashing C
extension does, "exit" ends the process; any other file is decoded by fitparse.
"""

import os
import signal
import time
from pathlib import Path

from connectors.fit import decode_fit


def decode(path: Path):
    name = Path(path).name
    if "hang" in name:
        while True:
            time.sleep(1)
    if "segfault" in name:
        os.kill(os.getpid(), signal.SIGSEGV)
    if "exit" in name:
        os._exit(3)
    return decode_fit(path)
