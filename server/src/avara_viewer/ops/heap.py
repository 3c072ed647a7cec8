"""The process's heap after start-up, kept out of the garbage collector's walks."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Move everything alive after start-up (modules, FastAPI's routes and models,
    SQLAlchemy's tables and compiled statements) out of the garbage collector's sight.

    Under load the cyclic collector's full collections otherwise walk that whole heap: up to
    0.21 s for one pause with wrk at 32 connections (SQLite, email into the Maildir; three
    full collections in 12 s took 0.42 s), a stall every in-flight request waits through.
    With the start-up heap frozen the longest full collection measured 11 ms and the three
    took 28 ms. Objects made later are collected as before.
    """
    gc.collect()
    gc.freeze()
