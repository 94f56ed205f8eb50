"""``python -m opencdp.sandbox``: the same as ``opencdp sandbox``."""

from .command import sandbox

sandbox(prog_name="opencdp sandbox")
