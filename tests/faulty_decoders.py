"""Decoders that misbehave on purpose, for the importer's supervision tests (loaded in worker processes).

A file whose name contains "hang" never finishes, "segfault" kills its process the way a crashing C
extension does, "exit" ends the process, "badframes" returns frames the steps after decoding cannot use (a
decoder bug); any other file is decoded by fitparse.
"""

import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import polars as pl

from retrostride.connectors.fit import decode_fit


def decode(path: Path):
    name = Path(path).name
    if "hang" in name:
        while True:
            time.sleep(1)
    if "segfault" in name:
        os.kill(os.getpid(), signal.SIGSEGV)
    if "exit" in name:
        os._exit(3)
    decoded = decode_fit(path)
    if "badframes" in name:  # times as text: validation cannot compare them with dates
        return replace(decoded, records=decoded.records.with_columns(pl.col("ts").cast(pl.String)))
    return decoded
