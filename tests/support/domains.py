"""Domain verification for tests: a local authoritative DNS server the app resolves through, a local HTTP
server for tokens, and helpers that claim and prove a host through the real API.

Fixtures ``dns_zone`` and ``token_site`` (a pytest plugin: see tests/conftest.py).
"""

from __future__ import annotations

import http.server
import threading

import pytest

from tests.support.dns_server import DnsServer


@pytest.fixture
def dns_zone(settings):
    server = DnsServer().start()
    settings.DNS_NAMESERVERS = [server.nameserver]
    settings.DOMAIN_CHECK_TIMEOUT = 1.0
    yield server
    server.stop()


class TokenSite:
    """Serves ``path -> body`` over HTTP on 127.0.0.1 (the app's HTTP check connects here)."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requests.append((self.headers.get("Host", ""), self.path))
                body = site.pages.get(self.path)
                data = (body if body is not None else "not here").encode()
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def token_site(settings, dns_zone):
    site = TokenSite()
    settings.DOMAIN_HTTP_PORT = site.port
    yield site
    site.close()


def claim(api, actor, host: str) -> dict:
    response = api.as_(actor).post("/api/domains", {"host": host})
    assert response.status_code in (200, 201), response.json()
    return response.json()


def prove_by_dns(api, actor, dns_zone: DnsServer, host: str) -> dict:
    """Claim ``host``, publish its token in the local DNS and verify: the verified domain."""
    claimed = claim(api, actor, host)
    dns_zone.txt(claimed["verification"]["dns_txt_name"], claimed["verification"]["dns_txt_value"])
    response = api.as_(actor).post(f"/api/domains/{host}/verify")
    assert response.status_code == 200 and response.json()["status"] == "verified", response.json()
    return response.json()
