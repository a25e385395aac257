"""Test certificates made with the openssl command line: two CAs, a server, gateways."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


def make_ca(directory: Path, name: str) -> Pair:
    """A self-signed CA certificate (EC P-256, valid one day)."""
    pair = Pair(directory / f"{name}.crt", directory / f"{name}.key")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(pair.key), "-out", str(pair.cert), "-days", "1", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return pair


def make_leaf(directory: Path, ca: Pair, cn: str, *, server: bool = False, dns: str | None = None) -> Pair:
    """A certificate for ``cn`` signed by ``ca``: a TLS server (SAN 127.0.0.1) or a TLS client."""
    stem = f"{cn}-{ca.cert.stem}"
    pair = Pair(directory / f"{stem}.crt", directory / f"{stem}.key")
    csr = directory / f"{stem}.csr"
    ext = directory / f"{stem}.ext"
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(pair.key), "-out", str(csr), "-subj", f"/CN={cn}")
    lines = ["basicConstraints=CA:FALSE", f"extendedKeyUsage={'serverAuth' if server else 'clientAuth'}"]
    if server:
        lines.append("subjectAltName=IP:127.0.0.1,DNS:localhost")
    elif dns:
        lines.append(f"subjectAltName=DNS:{dns}")
    ext.write_text("\n".join(lines) + "\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key), "-CAcreateserial",
             "-out", str(pair.cert), "-days", "1", "-extfile", str(ext))
    return pair
