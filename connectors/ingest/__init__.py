"""The ingest stage, bytes → frames → lake: `importer` (the entry), `supervisor` (decoder processes),
`batch` (what a decoder process does) and `ledger` (one row per file).

No Dagster here: the `source_files` asset and the CLI both call `import_files`.  Every file ends as
exactly one outcome (ok, partial, failed, duplicate, or skipped as already imported); a bad file
never stops the batch.  Files are decoded in supervised worker processes: a decoder that takes longer
than the limit is killed, one whose process dies (a segfault, the OOM killer) is explained, and in
both cases the rest of the batch goes on.  Decoded frames go through one plausibility step
(`connectors.validate`) before the lake.

Crash safety: the ledger row is written after the file's frames are in the lake, together with the
days it touches in `pending_days`; publishing a range removes them in its own transaction.  A
process killed at any point leaves at worst a decoded file that the next run decodes again, or
days that the next run publishes.
"""
