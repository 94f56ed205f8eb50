"""Import cost: ours beside Customer.io's client, in fresh interpreters.

Each figure is what ``python -X importtime`` counts for the statement's imports beyond the
interpreter's own start, the best of ``--rounds`` fresh processes (the least disturbed by
other work on the machine), with the number of modules the statement adds. The target:
``import opencdp`` within Customer.io's ``import customerio``.

    python -m bench.import_cost [--rounds 15]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

CASES = [
    "import opencdp",
    "import opencdp.guards",
    "import opencdp.audit",
    "from opencdp import Client",
    "import customerio",
]


def _run(statement: str) -> tuple[int, int]:
    """Microseconds of every top-level import (-X importtime), and modules loaded."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c",
         f"{statement}\nimport sys\nprint(len(sys.modules))"],
        capture_output=True, text=True, check=True)
    total = 0
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and not parts[2].startswith("  ") and parts[1].strip().isdigit():
            total += int(parts[1])
    return total, int(done.stdout.split()[-1])


def measure(statement: str, rounds: int) -> tuple[float, int]:
    """Seconds the statement's imports take beyond the interpreter's start (the best of
    ``rounds`` fresh processes), and the modules it adds."""
    base = min(_run("pass") for _ in range(rounds))
    runs = [_run(statement) for _ in range(rounds)]
    return (min(t for t, _ in runs) - base[0]) / 1e6, runs[0][1] - base[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    rounds = parser.parse_args().rounds
    print(f"{'statement':32} {'best of ' + str(rounds):>12} {'modules':>8}")
    for statement in CASES:
        seconds, modules = measure(statement, rounds)
        print(f"{statement:32} {seconds * 1000:10.1f} ms {modules:8d}")


if __name__ == "__main__":
    main()
