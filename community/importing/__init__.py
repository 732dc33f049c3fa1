"""Bringing an existing community in: readers turn a source (a Stack Exchange data dump, or the
synthetic generator) into plain records; one writer stores them in batches, idempotently."""
