"""A small, real authoritative DNS server for tests (UDP and TCP on 127.0.0.1, built on dnspython's message API).

Tests set the records it serves (``server.txt(name, value)``, ``server.a(name, address)``); every other
name gets NXDOMAIN. Point the app at it with ``settings.DNS_NAMESERVERS = [server.nameserver]``.
"""

from __future__ import annotations

import socketserver
import struct
import threading

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class _Records:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_name: dict[tuple[dns.name.Name, int], list[str]] = {}

    def add(self, name: str, rdtype: int, value: str) -> None:
        with self.lock:
            self.by_name.setdefault((dns.name.from_text(name), rdtype), []).append(value)

    def clear(self, name: str | None = None) -> None:
        with self.lock:
            if name is None:
                self.by_name.clear()
            else:
                wanted = dns.name.from_text(name)
                for key in [k for k in self.by_name if k[0] == wanted]:
                    del self.by_name[key]

    def answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        with self.lock:
            values = list(self.by_name.get((question.name, question.rdtype), []))
            known = any(name == question.name for name, _ in self.by_name)
        if values:
            response.answer.append(dns.rrset.from_text_list(question.name, 60, dns.rdataclass.IN, question.rdtype,
                                                            values))
        elif not known:
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()


class DnsServer:
    def __init__(self) -> None:
        self.records = _Records()
        self.queries = 0
        records, server = self.records, self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                server.queries += 1
                sock.sendto(records.answer(data), self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                head = self.request.recv(2)
                if len(head) < 2:
                    return
                (length,) = struct.unpack("!H", head)
                data = b""
                while len(data) < length:
                    chunk = self.request.recv(length - len(data))
                    if not chunk:
                        return
                    data += chunk
                server.queries += 1
                reply = records.answer(data)
                self.request.sendall(struct.pack("!H", len(reply)) + reply)

        self.udp, self.tcp = self._bind_pair(Udp, Tcp)
        self.port = self.udp.server_address[1]
        self.threads = [threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True)
                        for s in (self.udp, self.tcp)]

    @staticmethod
    def _bind_pair(udp_handler, tcp_handler):
        """A UDP and a TCP server on one free port (a port free for UDP may be taken for TCP: try again)."""
        for _ in range(50):
            udp = socketserver.ThreadingUDPServer(("127.0.0.1", 0), udp_handler)
            try:
                tcp = socketserver.ThreadingTCPServer(("127.0.0.1", udp.server_address[1]), tcp_handler)
            except OSError:
                udp.server_close()
                continue
            return udp, tcp
        raise RuntimeError("no port free for both UDP and TCP")

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> DnsServer:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        for server in (self.udp, self.tcp):
            server.shutdown()
            server.server_close()

    def txt(self, name: str, value: str) -> None:
        self.records.add(name, dns.rdatatype.TXT, '"' + value.replace('"', '\\"') + '"')

    def a(self, name: str, address: str) -> None:
        self.records.add(name, dns.rdatatype.A, address)

    def clear(self, name: str | None = None) -> None:
        self.records.clear(name)
