"""Benchmark of the VeloFlux proxy against HAProxy and nginx (see bench/proxy/run).

Prints requests/s, p50/p99 for a small and a 64 KB response through each proxy (wrk, keep-alive,
50 connections), the ratios ours/HAProxy and ours/nginx, memory per idle keep-alive client
connection at 10,000 connections, and config-change propagation time across 2 proxy processes.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOST = "bench.local"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_pair() -> int:
    """A port p such that p and p + 1 are free (worker i of the proxy's admin listens on admin-port + i)."""
    while True:
        port = free_port()
        try:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class Stack:
    def __init__(self, workdir: Path):
        self.dir = workdir
        self.procs: list[subprocess.Popen] = []
        self.pids: dict[str, int] = {}  # proxy under test -> its process (nginx: the master; its worker is a child)
        self.ports = {name: free_port() for name in ("backend", "backend_b", "haproxy", "nginx", "ours", "ours_admin",
                                                     "redis", "multi", "bare")}
        self.ports["multi_admin"] = free_port_pair()
        # the backends are local (nginx on 127.0.0.1): the address policy refuses loopback unless allowed
        os.environ.setdefault("VF_BACKEND_ALLOWED_NETWORKS", "127.0.0.1/32")
        self.env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{self.ports['redis']}/0", "VF_LOG_LEVEL": "WARNING"}

    def spawn(self, args: list[str], name: str, **kwargs) -> subprocess.Popen:
        log = open(self.dir / f"{name}.log", "w")  # noqa: SIM115 (lives as long as the process)
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, **kwargs)
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        p = self.ports
        (self.dir / "64k.bin").write_bytes(os.urandom(65536))
        (self.dir / "backend.conf").write_text(f"""
worker_processes 1; daemon off; pid {self.dir}/backend.pid; error_log {self.dir}/backend-error.log;
events {{ worker_connections 9000; }}
http {{ access_log off; keepalive_requests 10000000; keepalive_timeout 120;
  server {{ listen 127.0.0.1:{p['backend']};
    location = /small {{ default_type text/plain; return 200 "hello from backend A\\n"; }}
    location = /64k {{ alias {self.dir}/64k.bin; }} }}
  server {{ listen 127.0.0.1:{p['backend_b']};
    location / {{ default_type text/plain; return 200 "hello from backend B\\n"; }} }} }}
""")
        (self.dir / "nginx.conf").write_text(f"""
worker_processes 1; daemon off; pid {self.dir}/nginx.pid; error_log {self.dir}/nginx-error.log;
events {{ worker_connections 9000; }}
http {{ access_log off; keepalive_requests 10000000; keepalive_timeout 120;
  upstream backend {{ server 127.0.0.1:{p['backend']}; keepalive 256; }}
  server {{ listen 127.0.0.1:{p['nginx']};
    location / {{ proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host $host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; }} }} }}
""")
        (self.dir / "haproxy.cfg").write_text(f"""
global
  nbthread 1
  maxconn 9000
defaults
  mode http
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  option http-keep-alive
  http-reuse always
frontend fe
  bind 127.0.0.1:{p['haproxy']}
  option forwardfor
  default_backend be
backend be
  server s1 127.0.0.1:{p['backend']}
""")
        self.spawn(["redis-server", "--port", str(p["redis"]), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                    "no", "--dir", str(self.dir)], "redis")
        self.spawn(["nginx", "-c", str(self.dir / "backend.conf"), "-p", str(self.dir)], "backend")
        self.pids["nginx"] = self.spawn(["nginx", "-c", str(self.dir / "nginx.conf"), "-p", str(self.dir)], "nginx").pid
        self.pids["haproxy"] = self.spawn(["haproxy", "-f", str(self.dir / "haproxy.cfg")], "haproxy").pid
        for name in ("redis", "backend", "backend_b", "nginx", "haproxy"):
            wait_port(p[name])
        self.route(f"127.0.0.1:{p['backend']}")
        self.ours = self.spawn([sys.executable, "manage.py", "runproxy", "--host", "127.0.0.1", "--port",
                                str(p["ours"]), "--admin-port", str(p["ours_admin"]), "--workers", "1"],
                               "ours", cwd=ROOT, env=self.env)
        self.pids["ours"] = self.ours.pid
        self.pids["bare"] = self.spawn([sys.executable, str(ROOT / "bench/proxy/bare_relay.py"), str(p["bare"]),
                                        str(p["backend"])], "bare").pid
        wait_port(p["ours"])
        wait_port(p["bare"])
        time.sleep(0.5)

    def redis(self):
        import redis

        return redis.Redis(port=self.ports["redis"], decode_responses=True)

    def route(self, address: str) -> tuple[int, float]:
        """Write the bench tenant's fragment as the control plane does (one MULTI + a wake-up event)."""
        sys.path.insert(0, str(ROOT))
        from veloflux_site.storage import keys

        frag = {"tenant_id": "tn_bench", "active": True, "config_version": 1,
                "routes": [{"id": "rt_bench", "host": HOST, "path_prefix": "/", "pool": "web",
                            "max_body_bytes": None}],
                "pools": {"web": {"name": "web", "algorithm": "round_robin", "sticky_sessions": False, "backends": [
                    {"id": "be_bench", "address": address, "weight": 100, "enabled": True, "state": "active"}]}}}
        client = self.redis()
        started = time.perf_counter()
        pipe = client.pipeline(transaction=True)
        pipe.hset(keys.routing_table(), "tn_bench", json.dumps(frag))
        pipe.incr(keys.routing_version())
        version = pipe.execute()[1]
        client.publish(keys.events_channel("routing"), json.dumps({"type": "routing.changed", "version": version,
                                                                  "tenant_id": "tn_bench"}))
        client.close()
        return version, started

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM if "nginx" not in str(proc.args) else signal.SIGQUIT)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its child processes so far (from /proc)."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
            for task in Path(f"/proc/{current}/task").iterdir():
                pids += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def wrk(port: int, path: str, duration: int, connections: int = 50, pid: int | None = None) -> dict:
    """One wrk run; with ``pid``, also the CPU time that process spent per request (a figure that the
    scheduling noise of a shared machine moves much less than req/s or p99)."""
    cpu_before = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-H", f"Host: {HOST}",
                          f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pid) - cpu_before if pid else 0.0
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1))
    p99 = _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    return {"rps": rps, "p50": p50, "p99": p99, "errors": errors.group(0) if errors else "",
            "cpu_us": cpu * 1e6 / requests if requests else 0.0}


def throughput(stack: Stack, duration: int, rounds: int) -> dict[tuple[str, str], list[dict]]:
    """Interleaved rounds (each proxy once per round), so a burst of load from elsewhere on the machine
    does not land on one proxy only: (case, proxy) -> its runs, in round order."""
    names = ("haproxy", "nginx", "ours", "bare")
    results: dict[tuple[str, str], list[dict]] = {}
    for case, path in (("small", "/small"), ("64k", "/64k")):
        for name in names:
            wrk(stack.ports[name], path, 2)  # warm-up: connections, pools, caches
            results[(case, name)] = []
        for _ in range(rounds):
            for name in names:
                results[(case, name)].append(wrk(stack.ports[name], path, duration, pid=stack.pids[name]))
    return results


def median_round(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]


def idle_memory(stack: Stack, count: int) -> float:
    pid = stack.ours.pid

    def rss() -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    async def hold() -> float:
        time.sleep(1.0)
        before = rss()
        writers = []
        request = f"GET /small HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
        for batch in range(0, count, 500):
            pairs = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", stack.ports["ours"])
                                           for _ in range(min(500, count - batch))))
            for _reader, writer in pairs:
                writer.write(request)
            for reader, writer in pairs:
                await reader.readuntil(b"backend A\n")
                writers.append(writer)
        await asyncio.sleep(1.5)
        after = rss()
        for writer in writers:
            writer.close()
        return (after - before) / count

    return asyncio.run(hold())


def control_plane_changer(stack: Stack):
    """Changes made through the control plane's service layer (what the REST API calls): a tenant whose
    route on its platform name (``<slug>.<VF_PLATFORM_DOMAIN>``, the one host a tenant routes without proving
    a domain) is switched between pool ``pa`` (backend A) and pool ``pb`` (backend B)."""
    os.environ["REDIS_URL"] = stack.env["REDIS_URL"]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "veloflux_site.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from balancer import services
    from balancer.hosts import platform_name
    from tenants.audit import Actor
    from tenants.services import create_tenant_with_owner
    from veloflux_site.storage import keys
    from veloflux_site.storage.connection import get_redis

    p = stack.ports
    tenant, _, _ = create_tenant_with_owner(name="Bench propagation", plan="free",
                                            owner_email="bench-propagation@example.invalid")
    host = platform_name(tenant.slug)
    route = services.ensure_demo_setup(tenant.id, host=host, pool_name="pa",
                                       backend_addresses=[f"127.0.0.1:{p['backend']}"])["route"]
    services.ensure_demo_setup(tenant.id, host="propagation-b.local", pool_name="pb",
                               backend_addresses=[f"127.0.0.1:{p['backend_b']}"])

    def change(to_b: bool) -> tuple[int, float, str]:
        started = time.perf_counter()
        services.update_object(tenant.id, Actor.system(), "route", route.id, {"pool": "pb" if to_b else "pa"})
        return int(get_redis().get(keys.routing_version())), started, host

    return change


def propagation(stack: Stack, changes: int, via_api: bool = True) -> dict:
    p = stack.ports
    p["multi"], p["multi_admin"] = free_port(), free_port_pair()
    stack.spawn([sys.executable, "manage.py", "runproxy", "--host", "127.0.0.1", "--port", str(p["multi"]),
                 "--admin-port", str(p["multi_admin"]), "--workers", "2"], "multi", cwd=ROOT, env=stack.env)
    wait_port(p["multi"])
    try:
        for worker in range(2):
            wait_port(p["multi_admin"] + worker)
    except RuntimeError:
        print((stack.dir / "multi.log").read_text()[-2000:], file=sys.stderr)
        raise
    admins = [http.client.HTTPConnection("127.0.0.1", p["multi_admin"] + w, timeout=5) for w in range(2)]

    def version_of(conn) -> int:
        conn.request("GET", "/status")
        return json.loads(conn.getresponse().read())["routing_version"]

    changer = control_plane_changer(stack) if via_api else None
    swapped, routed = [], []
    for i in range(changes):
        target, expect = ((p["backend_b"], b"backend B") if i % 2 == 0 else (p["backend"], b"backend A"))
        if changer is not None:
            version, started, host = changer(i % 2 == 0)
        else:
            (version, started), host = stack.route(f"127.0.0.1:{target}"), HOST
        pending = set(range(2))
        first_request = swapped_at = None
        while pending or first_request is None:
            for w in list(pending):
                if version_of(admins[w]) >= version:
                    pending.discard(w)
            if not pending and swapped_at is None:
                swapped_at = time.perf_counter() - started
            if first_request is None:
                conn = http.client.HTTPConnection("127.0.0.1", p["multi"], timeout=5)
                conn.request("GET", "/small", headers={"Host": host})
                if expect in conn.getresponse().read():
                    first_request = time.perf_counter() - started
                conn.close()
            if time.perf_counter() - started > 5:
                raise RuntimeError("a config change did not propagate within 5 s")
        swapped.append(swapped_at)
        routed.append(first_request)
        time.sleep(0.02)
    for conn in admins:
        conn.close()

    def pct(values, q):
        values = sorted(values)
        return values[min(len(values) - 1, round(q * (len(values) - 1)))] * 1000

    return {"both_processes_p50_ms": pct(swapped, 0.5), "both_processes_p99_ms": pct(swapped, 0.99),
            "first_request_p50_ms": pct(routed, 0.5), "first_request_p99_ms": pct(routed, 0.99)}


def report_throughput(results: dict) -> None:
    print(f"\nVeloFlux proxy benchmark ({os.cpu_count()} CPUs, wrk -t1 -c50, keep-alive, median of interleaved "
          "rounds; ours: 1 worker with "
          "routing, algorithm, header rewriting and metrics on; HAProxy nbthread 1; nginx 1 worker)")
    for case in ("small", "64k"):
        print(f"\n  {case} response")
        print(f"  {'proxy':<8} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11}  errors")
        for name in ("haproxy", "nginx", "ours", "bare"):
            r = median_round(results[(case, name)])
            print(f"  {name:<8} {r['rps']:>10.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['cpu_us']:>11.1f}  "
                  f"{r['errors']}")
        print("  (bare = bench/proxy/bare_relay.py: uvloop + httptools relaying bytes, no proxy logic; a reference)")
        ours, ha, ng = (median_round(results[(case, name)]) for name in ("ours", "haproxy", "nginx"))
        print(f"  ours/HAProxy: {ours['rps'] / ha['rps']:.2f}x req/s (target >= 0.8), "
              f"p99 {ours['p99'] / ha['p99']:.2f}x (target <= 1.5)")
        print(f"  ours/nginx:   {ours['rps'] / ng['rps']:.2f}x req/s (target >= 1.0)")
        for name, label in (("haproxy", "HAProxy"), ("nginx", "nginx")):
            paired = " ".join(f"{o['rps'] / r['rps']:.2f}"
                              for o, r in zip(results[(case, "ours")], results[(case, name)], strict=True))
            print(f"  ours/{label} req/s in each round (the two runs seconds apart): {paired}")
        print(f"  CPU per request, ours/HAProxy: {ours['cpu_us'] / ha['cpu_us']:.2f}x, ours/nginx: "
              f"{ours['cpu_us'] / ng['cpu_us']:.2f}x (the proxy process, user + system)", flush=True)


def report_memory(memory: float, connections: int) -> None:
    if memory is not None:
        print(f"\n  memory per idle keep-alive client connection ({connections} connections): {memory:.1f} KB "
              "(target <= 30 KB)", flush=True)


def report_propagation(prop: dict, via: str, changes: int) -> None:
    source = "control-plane service call" if via == "api" else "routing fragment written to Redis"
    print(f"\n  config change ({source}, {changes} changes) -> both of 2 proxy processes swapped: "
          f"p50 {prop['both_processes_p50_ms']:.1f} ms, p99 {prop['both_processes_p99_ms']:.1f} ms; "
          f"-> first request routed by the new config: p50 {prop['first_request_p50_ms']:.1f} ms, "
          f"p99 {prop['first_request_p99_ms']:.1f} ms (target p99 < 100 ms)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds; the median round is shown")
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--changes-via", choices=("api", "redis"), default="api",
                        help="make config changes through the control plane's services (api) or by writing the "
                             "routing fragment directly (redis)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    workdir = Path(tempfile.mkdtemp(prefix="vf-bench-"))
    os.chmod(workdir, 0o755)
    stack = Stack(workdir)
    try:
        try:
            stack.start()
        except RuntimeError:
            for log in sorted(workdir.glob("*.log")):
                print(f"--- {log.name}\n{log.read_text()[-1500:]}", file=sys.stderr)
            raise
        report_throughput(throughput(stack, args.duration, args.rounds))
        if args.changes:  # before the idle-connection test, whose sockets take thousands of local ports
            report_propagation(propagation(stack, args.changes, via_api=args.changes_via == "api"),
                               args.changes_via, args.changes)
        if args.connections:
            report_memory(idle_memory(stack, args.connections), args.connections)
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
