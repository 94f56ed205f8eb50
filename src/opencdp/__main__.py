"""``python -m opencdp``: the same as the ``opencdp`` command."""

from .cli import main

main()
