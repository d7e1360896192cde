"""Certificates and keys for the test control plane, made with the ``openssl`` CLI.

The ``cryptography`` package is not a project dependency, and the OpenSSL command
line tool is on every Debian machine, so this shells out to it. One throwaway CA
signs the apiserver's serving cert, the client cert the apiserver presents to the
kubelet (for ``kubectl logs``) and, through :func:`node_serving_cert`, the real node's
kubelet serving cert.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

APISERVER_DNS_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class CertPaths:
    """Files written by :func:`generate`; all PEM."""

    ca_cert: Path
    ca_key: Path
    apiserver_cert: Path
    apiserver_key: Path
    kubelet_client_cert: Path  # the apiserver's identity towards kubelets
    kubelet_client_key: Path
    sa_key: Path  # service-account token signing key (private)
    sa_pub: Path  # ... and its public half, for token verification


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl CLI is required (apt-get install openssl)")
    result = subprocess.run([openssl, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {result.stderr.strip()}")


def _ec_key(path: Path) -> None:
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-out", str(path), cwd=path.parent,
    )  # fmt: skip


def _signed_cert(
    directory: Path,
    name: str,
    subject: str,
    extensions: list[str],
) -> tuple[Path, Path]:
    """Create ``name.key`` and ``name.crt`` signed by the CA in ``directory``."""
    key, csr, crt = (directory / f"{name}.{ext}" for ext in ("key", "csr", "crt"))
    ext_file = directory / f"{name}.ext"
    ext_file.write_text("\n".join(["basicConstraints=CA:FALSE", *extensions]) + "\n")
    _ec_key(key)
    _openssl("req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr), cwd=directory)
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "365", "-sha256", "-extfile", str(ext_file),
        "-out", str(crt), cwd=directory,
    )  # fmt: skip
    csr.unlink()
    ext_file.unlink()
    return crt, key


def node_serving_cert(
    directory: Path, name: str, node_name: str, ips: list[str]
) -> tuple[Path, Path]:
    """A kubelet serving cert signed by the CA in ``directory`` (made by :func:`generate`).

    The apiserver dials the node's InternalIP for logs/exec and verifies the cert against
    the CA (``--kubelet-certificate-authority``), so that IP must be in the SANs.
    """
    sans = ",".join([f"DNS:{node_name}", "DNS:localhost", *(f"IP:{ip}" for ip in ips)])
    return _signed_cert(
        directory,
        name,
        f"/CN=system:node:{node_name}",
        [
            "keyUsage=critical,digitalSignature,keyEncipherment",
            "extendedKeyUsage=serverAuth",
            f"subjectAltName={sans}",
        ],
    )


def generate(directory: Path, apiserver_ips: tuple[str, ...] = ()) -> CertPaths:
    """Write a fresh CA, serving/client certs and the service-account key pair.

    ``apiserver_ips``: more addresses the apiserver is reached at (besides 127.0.0.1), such
    as a real node's bridge address, which pods dial with TLS hostname checks on.
    """
    directory.mkdir(parents=True, exist_ok=True)
    _ec_key(directory / "ca.key")
    _openssl(
        "req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=headrace-test-ca",
        "-days", "3650", "-sha256", "-out", "ca.crt",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        cwd=directory,
    )  # fmt: skip
    server_usage = ["keyUsage=critical,digitalSignature,keyEncipherment"]
    dns = ",".join(f"DNS:{name}" for name in APISERVER_DNS_NAMES)
    ips = ",".join(f"IP:{ip}" for ip in ("127.0.0.1", *apiserver_ips))
    apiserver = _signed_cert(
        directory,
        "apiserver",
        "/CN=kube-apiserver",
        [*server_usage, "extendedKeyUsage=serverAuth", f"subjectAltName={dns},{ips}"],
    )
    kubelet_client = _signed_cert(
        directory,
        "apiserver-kubelet-client",
        "/O=system:masters/CN=kube-apiserver-kubelet-client",
        [*server_usage, "extendedKeyUsage=clientAuth"],
    )
    _openssl(
        "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
        "-out", "sa.key", cwd=directory,
    )  # fmt: skip
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=directory)
    return CertPaths(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        apiserver_cert=apiserver[0],
        apiserver_key=apiserver[1],
        kubelet_client_cert=kubelet_client[0],
        kubelet_client_key=kubelet_client[1],
        sa_key=directory / "sa.key",
        sa_pub=directory / "sa.pub",
    )
