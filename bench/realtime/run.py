"""bench/realtime: 5,000 WebSocket clients on ONE web process (uvicorn), two runs.

(a) fan-out: every client on one channel, 2 publications/s  -> 10,000 deliveries/s
(b) many channels: 100 channels x 50 clients, 100 publications/s in total -> 5,000 deliveries/s

Prints the delivery ratio, publish->receive latency p50/p99, the web process's CPU
and its memory per connection. Everything runs on this machine: a private
redis-server, the web process, client processes and the publisher share its cores.

    .venv/bin/python bench/realtime/run.py [--clients 5000] [--seconds 60]
    .venv/bin/python bench/realtime/run.py --protocol centrifugo   # clients: Centrifugo's JavaScript SDK
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.asgi_server import WS_PROTOCOL, AsgiServer  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402


def proc_stat(pid: int) -> tuple[float, int]:
    """(cpu seconds, rss bytes) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss


HERE = Path(__file__).resolve().parent


def client_command(kind: str, protocol: str) -> list[str]:
    """Node (`ws`) clients cost a fraction of the CPU of Python ones, leaving the cores to the server."""
    if protocol == "centrifugo" or kind == "node":
        if not (HERE / "node_modules" / "ws").is_dir() or not (HERE / "node_modules" / "centrifuge").is_dir():
            subprocess.run(["npm", "ci", "--prefer-offline", "--no-audit", "--no-fund", "--silent"], cwd=HERE,
                           check=True)
        return ["node", str(HERE / ("clients_sdk.js" if protocol == "centrifugo" else "clients.js"))]
    return [sys.executable, str(HERE / "clients.py")]


class ClientProcess:
    def __init__(self, url: str, count: int, kind: str, protocol: str = "veloflux", token: str = ""):
        self.process = subprocess.Popen([*client_command(kind, protocol), url, str(count), token],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)

    def send(self, message: dict) -> dict:
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def wait_ready(self) -> int:
        return json.loads(self.process.stdout.readline())["ready"]

    def quit(self) -> None:
        try:
            self.process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.process.stdin.flush()
            self.process.wait(10)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            self.process.kill()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_phase(name: str, clients: list[ClientProcess], channels: list[str], rate: float, seconds: float,
              publish, pid: int) -> dict:
    per_client = len(channels) // len(clients)
    live = sum(client.send({"cmd": "subscribe", "channels": channels[index * per_client:(index + 1) * per_client]})
               ["subscribed"] for index, client in enumerate(clients))
    if live != len(channels):
        raise SystemExit(f"only {live} of {len(channels)} subscriptions were confirmed")
    distinct = sorted(set(channels))
    subscribers = {ch: channels.count(ch) for ch in distinct}
    cpu0, _ = proc_stat(pid)
    started = time.time()
    expected = 0
    sent = 0
    while time.time() - started < seconds:
        target = distinct[sent % len(distinct)]
        publish(target, {"sent_at": time.time(), "n": sent})
        expected += subscribers[target]
        sent += 1
        next_at = started + sent / rate
        time.sleep(max(0.0, next_at - time.time()))
    publishing_wall = time.time() - started
    cpu1, rss = proc_stat(pid)
    reports = drain(clients, expected)
    drained_after = time.time() - started - publishing_wall
    received = sum(r["received"] for r in reports)
    latencies = [v for r in reports for v in r["latencies_ms"]]
    return {"run": name, "publications": sent, "expected": expected, "received": received,
            "delivery_ratio": received / expected if expected else float("nan"),
            "p50_ms": percentile(latencies, 0.50), "p99_ms": percentile(latencies, 0.99),
            "fell_behind": sum(r["fell_behind"] for r in reports),
            "closed": sum(r.get("closed", 0) for r in reports), "drain_s": drained_after,
            "web_cpu_cores": (cpu1 - cpu0) / publishing_wall, "rss": rss,
            "deliveries_per_s": received / (publishing_wall + drained_after)}


def drain(clients: list[ClientProcess], expected: int, quiet: float = 5.0, limit: float = 120.0) -> list[dict]:
    """Reports once everything arrived, or nothing more arrived for ``quiet`` seconds (then it is lost)."""
    deadline = time.time() + limit
    last, last_change = -1, time.time()
    while True:
        reports = [client.send({"cmd": "report"}) for client in clients]
        received = sum(r["received"] for r in reports)
        if received >= expected or time.time() > deadline:
            return reports
        if received != last:
            last, last_change = received, time.time()
        elif time.time() - last_change > quiet:
            return reports
        time.sleep(0.25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--ws", default=WS_PROTOCOL, help="uvicorn's --ws (default: the Procfile's)")
    parser.add_argument("--client", choices=("node", "python"), default="node", help="load generator")
    parser.add_argument("--protocol", choices=("veloflux", "centrifugo"), default="veloflux",
                        help="the clients' protocol: the seeds' frames (clients.js) or Centrifugo's, through its "
                             "JavaScript SDK (clients_sdk.js; always Node)")
    args = parser.parse_args()

    redis_server = RedisServer().start()
    os.environ["REDIS_URL"] = redis_server.url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "veloflux_site.settings")
    import django

    django.setup()
    from tenants import services, tokens
    from veloflux_site.realtime import hub
    from veloflux_site.realtime import tokens as hub_tokens

    tenant, owner, _ = services.create_tenant_with_owner(name="Bench", plan="enterprise", owner_email="b@bench.test",
                                                         owner_password="bench-password-1")
    token = tokens.issue_pair(owner.id, tenant.id).access
    server = AsgiServer(redis_server.url, ws=args.ws).start()
    pid = server.process.pid
    try:
        _, rss_idle = proc_stat(pid)
        if args.protocol == "centrifugo":  # the SDK sends its connection token in `connect`
            url = f"{server.ws_url}/connection/websocket"
            token = hub_tokens.issue_connection(owner.id, tenant.id, owner.auth_epoch, 3600).token
        else:
            url = f"{server.ws_url}/connection/websocket?token={token}"
        per_process = args.clients // args.client_processes
        clients = [ClientProcess(url, per_process, args.client, args.protocol, token)
                   for _ in range(args.client_processes)]
        connected = sum(client.wait_ready() for client in clients)
        time.sleep(2)
        _, rss_connected = proc_stat(pid)
        results = []
        fan_out = [f"tenant:{tenant.id}:fanout"] * connected
        results.append(run_phase("a) fan-out 1 ch, 2 pub/s", clients, fan_out, 2, args.seconds, hub.publish, pid))
        many = [f"tenant:{tenant.id}:room-{i % 100}" for i in range(connected)]
        results.append(run_phase("b) 100 ch x 50, 100 pub/s", clients, many, 100, args.seconds, hub.publish, pid))
        for client in clients:
            client.quit()
    finally:
        server.stop()
        redis_server.cleanup()

    per_connection_kb = (rss_connected - rss_idle) / max(1, connected) / 1024
    print(f"\nuvicorn --ws {args.ws}; clients' protocol: {args.protocol}"
          + (" (Centrifugo's JavaScript SDK, npm centrifuge)" if args.protocol == "centrifugo" else ""))
    print(f"clients connected: {connected} on one web process; memory per connection: {per_connection_kb:.1f} KB "
          f"(RSS {rss_idle / 2**20:.0f} MB idle -> {rss_connected / 2**20:.0f} MB connected; target < 50 KB)")
    print(f"{'run':28} {'pubs':>6} {'expected':>9} {'received':>9} {'ratio':>8} {'told':>5} {'closed':>6} "
          f"{'p50 ms':>8} {'p99 ms':>8} {'deliv/s':>8} {'web CPU':>8} {'drain s':>8}")
    for r in results:
        print(f"{r['run']:28} {r['publications']:>6} {r['expected']:>9} {r['received']:>9} "
              f"{r['delivery_ratio']:>8.4f} {r['fell_behind']:>5} {r['closed']:>6} {r['p50_ms']:>8.1f} "
              f"{r['p99_ms']:>8.1f} {r['deliveries_per_s']:>8.0f} {r['web_cpu_cores']:>7.2f}c {r['drain_s']:>8.1f}")
    print("told = subscriptions told they fell behind (code 3001, or 2500 in Centrifugo's protocol; a client "
          "recovers them from history); "
          "closed = connections the server closed")
    print(f"load generator: {'node SDK' if args.protocol == 'centrifugo' else args.client} "
          f"x {args.client_processes} processes")
    print("targets: ratio 1.0000; p99 < 250 ms in a), < 100 ms in b)")


if __name__ == "__main__":
    main()
