"""Benchmark: active health checks of N backends (default 10,000) at a 5 s interval.

    . .venv/bin/activate && python bench/healthchecks/run.py            # full run, ~3 min
    python bench/healthchecks/run.py --backends 2000 --window 30        # quick

Starts its own redis-server, a backends process (``backends.py``: many ports x many paths),
writes the routing table as the control plane would, runs ``manage.py runhealthchecks``
and reports:
- on time: share of probes that reached their backend within 1 s of their due time;
- worker CPU: the sweepers' CPU seconds per wall second over the window (cores);
- new backends: from a fragment write adding backends to every simulated proxy seeing them ``up``;
- detection: from a victim backend's port closing to every simulated proxy (pub/sub
  subscribers that re-read the overlay, as a proxy does) seeing it ``down``; target p99 <
  interval x fall + 1 s.
Then, as a side-by-side reference on the same backends, HAProxy (one thread) health-checks
the same servers at the same interval; its CPU is measured the same way. The Envoy figure
(main thread saturated at ~20,000 endpoints at 5 s, i.e. ~4,000 checks/s per core) is quoted,
not measured. Both share this machine's 2 CPUs with the backends process and Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.redis_server import RedisServer, free_port  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ENVOY_CHECKS_PER_CORE = 20_000 / 5.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def base_port(count: int) -> int:
    """A run of free ports: probe a few candidates, then trust the range (bench machine)."""
    for _ in range(50):
        start = random.randint(20000, 30000 - count)
        if all(free_port_ok(start + i) for i in range(0, count, max(1, count // 20))):
            return start
    raise RuntimeError("no free port range")


def free_port_ok(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Backends:
    def __init__(self, ports: list[int], victims: list[int]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("backends.py")), "--ports", f"{ports[0]}-{ports[-1]}",
             "--victims", f"{victims[0]}-{victims[-1]}" if victims else ""],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lock = threading.Lock()
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("backends did not start")

    def command(self, line: str) -> dict:
        with self.lock:
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()
            return json.loads(self.process.stdout.readline())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.write("quit\n")
            self.process.stdin.flush()
            self.process.wait(timeout=10)


def write_routing_table(client: redis.Redis, ports: list[int], victims: list[int], backends: int,
                        check: dict) -> dict[str, int]:
    """Tenants of 100 backends over the shared ports (a path per backend), plus one victim per own port."""
    from veloflux_site.storage import keys

    victim_ids = {}
    entries = [(f"be_{i}", f"127.0.0.1:{ports[i % len(ports)]}", f"/b/{i}") for i in range(backends)]
    for n, port in enumerate(victims):
        victim_ids[f"be_victim_{n}"] = port
        entries.append((f"be_victim_{n}", f"127.0.0.1:{port}", "/victim"))
    pipe = client.pipeline(transaction=True)
    for t in range(0, len(entries), 100):
        tenant_id = f"tn_bench{t // 100:04d}"
        members = [{"id": b, "address": a, "weight": 100, "enabled": True, "state": "active", "region": None,
                    "health_check": {**check, "path": path}} for b, a, path in entries[t:t + 100]]
        fragment = {"tenant_id": tenant_id, "active": True, "config_version": 1, "routes": [],
                    "pools": {"web": {"name": "web", "algorithm": "round_robin", "sticky_sessions": False,
                                      "backends": members}}}
        pipe.hset(keys.routing_table(), tenant_id, json.dumps(fragment))
    pipe.incr(keys.routing_version())
    pipe.execute()
    return victim_ids


class Proxy(threading.Thread):
    """Stands in for a proxy: on a health event it re-reads the overlay (as the contract says) and notes
    when each victim became ``down`` there."""

    def __init__(self, url: str, victims: set[str], newcomers: set[str]) -> None:
        super().__init__(daemon=True)
        from veloflux_site.storage import keys

        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(keys.events_channel("health"))
        self.overlay_key = keys.routing_health()
        self.victims = victims
        self.newcomers = newcomers
        self.avoided_at: dict[str, float] = {}
        self.usable_at: dict[str, float] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            message = self.pubsub.get_message(timeout=0.2)
            if not message:
                continue
            event = json.loads(message["data"])
            backend_id = event.get("backend_id")
            fresh_down = event.get("state") == "down" and backend_id in self.victims - self.avoided_at.keys()
            if fresh_down and self.client.hget(self.overlay_key, backend_id) == "down":
                self.avoided_at[backend_id] = time.time()
            fresh_up = event.get("state") == "up" and backend_id in self.newcomers - self.usable_at.keys()
            if fresh_up and self.client.hget(self.overlay_key, backend_id) == "up":
                self.usable_at[backend_id] = time.time()


def add_newcomers(url: str, newcomers: list[str], ports: list[int]) -> dict[str, float]:
    """A tenant adds backends mid-run (as the control plane would): when did each become usable everywhere?"""
    from veloflux_site.storage import keys

    client = redis.Redis.from_url(url, decode_responses=True)
    check = {"type": "http", "method": "GET", "path": "/new", "interval": 5.0, "timeout": 2.0,
             "expected_status": [200], "rise": 2, "fall": 3}
    members = [{"id": b, "address": f"127.0.0.1:{ports[n % len(ports)]}", "weight": 100, "enabled": True,
                "state": "active", "region": None, "health_check": check} for n, b in enumerate(newcomers)]
    fragment = {"tenant_id": "tn_newcomers", "active": True, "config_version": 1, "routes": [],
                "pools": {"web": {"name": "web", "algorithm": "round_robin", "sticky_sessions": False,
                                  "backends": members}}}
    pipe = client.pipeline(transaction=True)
    pipe.hset(keys.routing_table(), "tn_newcomers", json.dumps(fragment))
    pipe.incr(keys.routing_version())
    pipe.execute()
    at = time.time()
    client.publish(keys.events_channel("routing"), json.dumps({"type": "routing.changed", "tenant_id": "tn_newcomers"}))
    return dict.fromkeys(newcomers, at)


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def run_sweeper(args, redis_url: str, backends: Backends, victim_ids: dict[str, int], ports: list[int]) -> dict:
    env = {**os.environ, "REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url, "VF_ENV": "test",
           "VF_LOG_LEVEL": "WARNING"}
    newcomers = [f"be_new_{n}" for n in range(args.newcomers)]
    proxies = [Proxy(redis_url, set(victim_ids), set(newcomers)) for _ in range(args.proxies)]
    added: dict[str, float] = {}
    for proxy in proxies:
        proxy.start()
    sweepers = [subprocess.Popen([sys.executable, "manage.py", "runhealthchecks", "--concurrency",
                                  str(args.concurrency), "--worker-id", f"bench-{n}"],
                                 cwd=ROOT, env=env, stdout=subprocess.DEVNULL) for n in range(args.sweepers)]
    try:
        time.sleep(args.warmup)
        t0, cpu0 = time.time(), sum(cpu_seconds(s.pid) for s in sweepers)
        adding = threading.Timer(args.window / 2, lambda: added.update(add_newcomers(redis_url, newcomers, ports)))
        adding.start()
        kill_by = args.window - (args.interval * args.fall + 3)
        plan = sorted((random.uniform(0, max(1.0, kill_by)), backend_id) for backend_id in victim_ids)
        killed_at: dict[str, float] = {}
        for offset, backend_id in plan:
            time.sleep(max(0.0, t0 + offset - time.time()))
            killed_at[backend_id] = backends.command(f"kill {victim_ids[backend_id]}")["at"]
        time.sleep(max(0.0, t0 + args.window - time.time()))
        t1, cpu1 = time.time(), sum(cpu_seconds(s.pid) for s in sweepers)
        seen = backends.command(f"stats {t0} {t1}")
    finally:
        for sweeper in sweepers:
            sweeper.terminate()
        for sweeper in sweepers:
            sweeper.wait(timeout=60)
        for proxy in proxies:
            proxy.stopped.set()
    detection = []
    missed = 0
    for backend_id, at in killed_at.items():
        times = [p.avoided_at.get(backend_id) for p in proxies]
        if None in times:
            missed += 1
        else:
            detection.append(max(times) - at)
    first_check = [max(p.usable_at.get(b, float("inf")) for p in proxies) - at for b, at in added.items()]
    expected = (args.backends + len(victim_ids)) * (t1 - t0) / args.interval
    return {"sweepers": args.sweepers, "window_s": round(t1 - t0, 1), "probes": seen["probes"],
            "expected_probes": round(expected),
            "on_time_share": round(seen["on_time"] / seen["probes"], 5) if seen["probes"] else None,
            "lateness_p50_s": seen["lateness_p50"], "lateness_p99_s": seen["lateness_p99"],
            "lateness_max_s": seen["lateness_max"],
            "on_time_share_per_10s": seen["on_time_per_10s"],
            "within_100ms_share": round(seen["within_100ms"] / seen["probes"], 5) if seen["probes"] else None,
            "within_250ms_share": round(seen["within_250ms"] / seen["probes"], 5) if seen["probes"] else None,
            "worker_cpu_cores": round((cpu1 - cpu0) / (t1 - t0), 3),
            "detection_p50_s": percentile(detection, 0.5), "detection_p99_s": percentile(detection, 0.99),
            "detection_max_s": max(detection) if detection else None, "victims": len(killed_at),
            "victims_not_detected": missed, "detection_target_s": args.interval * args.fall + 1,
            "new_backend_usable_p50_s": percentile(first_check, 0.5), "new_backend_usable_max_s": max(first_check)
            if first_check else None, "new_backends": len(first_check)}


def run_haproxy(args, ports: list[int], backends: Backends) -> dict | None:
    binary = shutil.which("haproxy")
    if binary is None:
        return None
    workdir = Path(tempfile.mkdtemp(prefix="vf-bench-haproxy-"))
    lines = ["global", "  maxconn 4000", "  nbthread 1", "defaults", "  mode http", "  timeout connect 2s",
             "  timeout client 5s", "  timeout server 5s", "  timeout check 2s",
             "frontend unused", f"  bind 127.0.0.1:{free_port()}", "  default_backend pool0"]
    inter = int(args.interval * 1000)
    for t in range(0, args.backends, 100):
        lines += [f"backend pool{t // 100}", "  option httpchk GET /h"]
        lines += [f"  server s{i} 127.0.0.1:{ports[i % len(ports)]} check inter {inter} fall {args.fall} "
                  f"rise {args.rise}" for i in range(t, min(t + 100, args.backends))]
    (workdir / "haproxy.cfg").write_text("\n".join(lines) + "\n")
    process = subprocess.Popen([binary, "-f", str(workdir / "haproxy.cfg"), "-db"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        time.sleep(args.warmup)
        t0, cpu0 = time.time(), cpu_seconds(process.pid)
        time.sleep(args.reference_window)
        t1, cpu1 = time.time(), cpu_seconds(process.pid)
        seen = backends.command(f"stats {t0} {t1}")
    finally:
        process.terminate()
        process.wait(timeout=20)
        shutil.rmtree(workdir, ignore_errors=True)
    return {"window_s": round(t1 - t0, 1), "probes": seen["untagged_probes"],
            "expected_probes": round(args.backends * (t1 - t0) / args.interval),
            "cpu_cores": round((cpu1 - cpu0) / (t1 - t0), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", type=int, default=10_000)
    parser.add_argument("--ports", type=int, default=100, help="ports the shared backends listen on")
    parser.add_argument("--victims", type=int, default=40, help="backends killed during the window")
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--fall", type=int, default=3)
    parser.add_argument("--rise", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--reference-window", type=float, default=30.0)
    parser.add_argument("--proxies", type=int, default=3)
    parser.add_argument("--newcomers", type=int, default=20, help="backends added mid-window")
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--sweepers", type=int, default=1, help="runhealthchecks processes (claims share the work)")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "veloflux_site.settings")
    import django

    django.setup()

    first = base_port(args.ports + args.victims)
    ports = list(range(first, first + args.ports))
    victims = list(range(first + args.ports, first + args.ports + args.victims))
    server = RedisServer().start()
    backends = Backends(ports, victims)
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        check = {"type": "http", "method": "GET", "path": "/", "interval": args.interval, "timeout": args.timeout,
                 "expected_status": [200], "rise": args.rise, "fall": args.fall}
        victim_ids = write_routing_table(client, ports, victims, args.backends, check)
        print(f"{args.backends} backends on {args.ports} ports + {args.victims} victims, every {args.interval:g}s, "
              f"fall {args.fall}; {os.cpu_count()} CPUs (shared with the backends process and Redis)", flush=True)
        results = {"veloflux": run_sweeper(args, server.url, backends, victim_ids, ports)}
        if not args.no_reference:
            results["haproxy"] = run_haproxy(args, ports, backends)
    finally:
        backends.stop()
        server.cleanup()
    report(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def report(results: dict, args) -> None:
    ours = results["veloflux"]
    print(json.dumps(results, indent=2))
    rate = ours["probes"] / ours["window_s"]
    print(f"\nVeloFlux, {ours['sweepers']} sweeper process(es): {ours['probes']} probes in {ours['window_s']}s "
          f"({rate:.0f}/s, "
          f"expected {ours['expected_probes']}); on time (<= 1 s late): {ours['on_time_share']:.2%} (target >= 99%)")
    print(f"  worker CPU: {ours['worker_cpu_cores']:.2f} cores (target < 1); "
          f"{rate / max(ours['worker_cpu_cores'], 1e-9):.0f} checks/s per core "
          f"(Envoy, quoted: ~{ENVOY_CHECKS_PER_CORE:.0f}/s per core)")
    print(f"  detection: p50 {ours['detection_p50_s']}s, p99 {ours['detection_p99_s']}s, max "
          f"{ours['detection_max_s']}s over {ours['victims']} victims (target p99 < {ours['detection_target_s']}s); "
          f"not detected: {ours['victims_not_detected']}")
    print(f"  new backends: usable on every proxy after p50 {ours['new_backend_usable_p50_s']}s, max "
          f"{ours['new_backend_usable_max_s']}s ({ours['new_backends']} added mid-window; first check within 1 s)")
    reference = results.get("haproxy")
    if reference:
        ref_rate = reference["probes"] / reference["window_s"]
        print(f"HAProxy (1 thread, same backends): {ref_rate:.0f} checks/s (expected "
              f"{reference['expected_probes'] / reference['window_s']:.0f}/s) on {reference['cpu_cores']:.2f} cores; "
              f"CPU ratio VeloFlux/HAProxy: {ours['worker_cpu_cores'] / max(reference['cpu_cores'], 1e-9):.1f}x")


if __name__ == "__main__":
    main()
