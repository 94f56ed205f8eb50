"""The migration around the data path: backfill (``opencdp import``), the phase-3 verdict
(``opencdp migrate status``) and the way back (a held Customer.io copy, ``migrate rollback``).

Every part here is a producer or a reader of the engine like any caller: records go through
the same guards, engine and queues as a call, never through a private path to the wire.
"""
