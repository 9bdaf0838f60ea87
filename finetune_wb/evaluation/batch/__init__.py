"""Batch-mode evaluation through OpenAI's Batch API (``evaluate(..., mode="batch")``).

:mod:`.settings` (options and the per-batch summary), :mod:`.shards` (input files on disk),
:mod:`.ledger` (the record of shards and batches in the answer cache file), :mod:`.remote` (the API calls),
:mod:`.collect` (results files into the cache) and :mod:`.runner` (submit, wait, collect). The engine calls
:func:`.runner.run_batches` first and then runs its usual path, which finds the batch answers in the cache.
"""
