"""HTTPS: one SSLContext per certificate, chosen by SNI from the certificates stored in Redis.

``vf:tls:certificates`` (``keys.tls_certificates()``) is a HASH host -> JSON {"cert": PEM chain,
"key": PEM private key}; ``*.example.com`` entries serve any name under example.com and a
``default`` entry serves clients that send no SNI. The proxy reloads it with the routing table
and on a message on ``vf:events:tls``.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import tempfile

log = logging.getLogger("veloflux.proxy")


def _context(cert_pem: str, key_pem: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    with tempfile.TemporaryDirectory(prefix="vf-tls-") as directory:
        os.chmod(directory, 0o700)
        cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
        with open(cert_path, "w") as cert_file:
            cert_file.write(cert_pem)
        with open(os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as key_file:
            key_file.write(key_pem)
        context.load_cert_chain(cert_path, key_path)
    return context


class CertStore:
    def __init__(self):
        self.raw: dict[str, str] = {}
        self.contexts: dict[str, ssl.SSLContext] = {}
        self.server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.server_context.sni_callback = self._select

    def update(self, raw: dict[str, str]) -> None:
        if raw == self.raw:
            return
        contexts = {}
        for host, value in raw.items():
            try:
                data = json.loads(value)
                contexts[host.lower()] = (self.contexts.get(host.lower()) if self.raw.get(host) == value
                                          else _context(data["cert"], data["key"]))
            except (ValueError, KeyError, TypeError, ssl.SSLError, OSError) as exc:
                log.error("TLS certificate for %s is unusable, skipped: %s", host, exc)
        self.raw, self.contexts = dict(raw), contexts
        log.info("TLS: %d certificate(s) loaded", len(contexts))

    def lookup(self, server_name: str | None) -> ssl.SSLContext | None:
        if not server_name:
            return self.contexts.get("default")
        name = server_name.lower().rstrip(".")
        context = self.contexts.get(name)
        if context is None and "." in name:
            context = self.contexts.get("*" + name[name.index("."):])
        return context

    def _select(self, ssl_object, server_name, _context):
        context = self.lookup(server_name)
        if context is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        ssl_object.context = context
        return None
