"""Decoder processes, watched: batches of files handed out as workers free up; a hang or a death
fails only its file (`warehouse.processes.supervised`, the pool scoring uses too)."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager

from retrostride.connectors.ingest.batch import Job, decode_into_lake
from retrostride.warehouse.disk import DiskFull
from retrostride.warehouse.processes import Lost, supervised, worker_started_early

#: Files a decoder process takes at a time, and their most bytes (a batch's frames are in memory
#: together): the Polars steps after decoding run once per batch.
DECODE_BATCH = 32
DECODE_BATCH_BYTES = 8 * 2**20


def supervised_decoding(jobs: Iterable[Job], workers: int, timeout_s: float) -> Iterator[tuple[Job, tuple]]:
    """(job, (outcome, ledger row)) for every job, decoded in batches of up to `DECODE_BATCH` in at
    most `workers` watched processes, in the order the batches finish.

    A worker that dies or passes the time limit (per file) is replaced. The file it hung on comes
    back as (None, reason); when it died, each file of its batch is decoded again on its own, so
    only a file that kills a worker by itself comes back as (None, reason).
    """
    alone: deque[list[Job]] = deque()  # files of a batch whose worker died: one per batch, to find the culprit
    for batch, result in supervised(_batches(jobs), _decoded, workers, timeout_s, again=alone):
        if isinstance(result, DiskFull):  # the import ends here, saying so in one sentence
            raise result
        if not isinstance(result, Lost):
            yield from zip(batch, result)
        elif len(batch) == 1 or (result.hung and result.at >= 0):
            culprit = max(result.at, 0)
            yield batch[culprit], (None, f"decoder {result.what} ({result.how}; the next import tries again)")
            alone.extend([job] for i, job in enumerate(batch) if i != culprit)
        else:
            alone.extend([job] for job in batch)


def decoder_started_early(workers: int) -> AbstractContextManager[int]:
    """A decoder process started now, importing the decoders while the caller goes on with other work
    (the CLI: loading Dagster); within the block, the first batch `supervised_decoding` hands out goes to it."""
    return worker_started_early(shares_cores=workers > 1, preload=[__name__])


def _decoded(jobs: list[Job], progress) -> list | DiskFull:
    """A worker's task: `decode_into_lake`, or the full disk that stopped it (handed back, not raised:
    a raise would end the worker as a death, which the batch's files would be blamed for)."""
    try:
        return decode_into_lake(jobs, progress)
    except DiskFull as full:
        return full


def _batches(jobs: Iterable[Job]) -> Iterator[list[Job]]:
    """`jobs` in batches of up to `DECODE_BATCH` files and `DECODE_BATCH_BYTES` (at least one file),
    each taken as late as possible: when a worker asks for it."""
    batch: list[Job] = []
    size = 0
    for job in jobs:
        batch.append(job)
        try:
            size += os.path.getsize(job.path)
        except OSError:  # gone since it was hashed: its decoder says so
            pass
        if len(batch) == DECODE_BATCH or size >= DECODE_BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch
