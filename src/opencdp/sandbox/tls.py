"""A throw-away certificate authority and a leaf for 127.0.0.1, ::1 and localhost.

trustme does exactly this (a CA and a leaf in memory, written out as PEM files); clients that
insist on https trust the sandbox by pointing their CA bundle at ``ca_file``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

__all__ = ["TLSFiles", "make_tls_files"]


@dataclass(frozen=True)
class TLSFiles:
    directory: str
    ca_file: str
    cert_file: str  # leaf certificate chain and private key, one PEM


def make_tls_files(directory: str | None = None) -> TLSFiles:
    import trustme

    directory = directory or tempfile.mkdtemp(prefix="opencdp-sandbox-tls-")
    ca = trustme.CA(organization_name="opencdp sandbox")
    leaf = ca.issue_cert("127.0.0.1", "::1", "localhost")
    ca_file = os.path.join(directory, "sandbox-ca.pem")
    cert_file = os.path.join(directory, "sandbox-server.pem")
    ca.cert_pem.write_to_path(ca_file)
    leaf.private_key_and_cert_chain_pem.write_to_path(cert_file)
    os.chmod(cert_file, 0o600)
    return TLSFiles(directory, ca_file, cert_file)
