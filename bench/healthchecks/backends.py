"""The benchmark's backends: one asyncio process answering health checks on many ports and paths.

Every request is answered ``200`` and closed. A probe carrying ``X-VeloFlux-Check:
<worker>|<backend>|<due>`` is recorded with its lateness (arrival - due). Commands on stdin:
``kill <port>`` closes that port's listener (the backends there die: connection refused),
``stats <t0> <t1>`` prints one JSON line about the probes that arrived in [t0, t1), ``quit``.

    python bench/healthchecks/backends.py --ports 20000-20099 --victims 20100-20139
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
HEADER = b"x-veloflux-check:"


class Recorder:
    def __init__(self) -> None:
        self.arrivals: list[tuple[float, float]] = []  # (arrival, lateness) of our probes
        self.untagged: list[tuple[float, bytes]] = []  # (arrival, path) of other checkers (the reference)


class CheckProtocol(asyncio.Protocol):
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.buffer = b""

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer:
            if len(self.buffer) > 8192:
                self.transport.close()
            return
        now = time.time()
        lower = self.buffer.lower()
        start = lower.find(HEADER)
        if start >= 0:
            end = lower.find(b"\r\n", start)
            tag = self.buffer[start + len(HEADER):end].strip().decode("latin-1")
            try:
                due = float(tag.rsplit("|", 1)[1])
                self.recorder.arrivals.append((now, now - due))
            except (IndexError, ValueError):
                pass
        else:
            self.recorder.untagged.append((now, self.buffer.split(b" ", 2)[1]))
        self.transport.write(RESPONSE)
        self.transport.close()


def port_range(text: str) -> list[int]:
    if not text:
        return []
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def stats(recorder: Recorder, t0: float, t1: float) -> dict:
    window = [(at, late) for at, late in recorder.arrivals if t0 <= at < t1]
    lateness = sorted(late for _, late in window)
    slices: dict[int, list[int]] = {}
    for at, late in window:
        counts = slices.setdefault(int((at - t0) // 10), [0, 0])
        counts[0] += 1
        counts[1] += late <= 1.0
    total = len(lateness)
    untagged = [(at, path) for at, path in recorder.untagged if t0 <= at < t1]
    per_path = Counter(path for _, path in untagged)
    return {
        "probes": total,
        "on_time": sum(1 for late in lateness if late <= 1.0),
        "lateness_p50": lateness[total // 2] if total else None,
        "lateness_p99": lateness[min(total - 1, int(total * 0.99))] if total else None,
        "lateness_max": lateness[-1] if total else None,
        "within_100ms": sum(1 for late in lateness if late <= 0.1),
        "within_250ms": sum(1 for late in lateness if late <= 0.25),
        "on_time_per_10s": [round(on_time / total_, 4) for _, (total_, on_time) in sorted(slices.items())],
        "untagged_probes": len(untagged),
        "untagged_paths": len(per_path),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ports", required=True)
    parser.add_argument("--victims", default="")
    args = parser.parse_args()
    loop = asyncio.get_running_loop()
    recorder = Recorder()
    servers = {}
    for port in port_range(args.ports) + port_range(args.victims):
        servers[port] = await loop.create_server(lambda: CheckProtocol(recorder), "127.0.0.1", port, backlog=4096,
                                                 reuse_address=True)
    print("ready", flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().split():
        if line[0] == "kill":
            server = servers.pop(int(line[1]), None)
            if server is not None:
                server.close()
            print(json.dumps({"killed": int(line[1]), "at": time.time()}), flush=True)
        elif line[0] == "stats":
            print(json.dumps(stats(recorder, float(line[1]), float(line[2]))), flush=True)
        elif line[0] == "quit":
            break


if __name__ == "__main__":
    try:
        import uvloop
        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
