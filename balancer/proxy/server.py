"""Listeners and worker processes: ``--workers N`` forked processes share the ports with SO_REUSEPORT."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import logging
import os
import signal
import socket
import threading
import time

import uvloop

from balancer.proxy import codec
from balancer.proxy.admin import AdminProtocol
from balancer.proxy.app import ProxyApp
from balancer.proxy.protocol import ClientProtocol
from balancer.proxy.settings import ProxySettings

log = logging.getLogger("veloflux.proxy")
GRACE_S = 10.0
BACKLOG = 4096


async def serve(settings: ProxySettings, worker: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(signum, _frame) -> None:
        # A plain Python handler (run between bytecodes; the sweeper runs Python at least every 0.5 s)
        # rather than loop.add_signal_handler, whose wake-up was seen to miss a SIGTERM under uvloop.
        loop.call_soon_threadsafe(stop.set)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    app = ProxyApp(settings, loop, worker)
    if settings.https_port:
        from balancer.proxy.tls import CertStore

        app.certificates = CertStore()
    await app.start()
    servers = [await loop.create_server(lambda: ClientProtocol(app, b"http"),
                                        **listen_on(settings.host, settings.port, reuse_port=True))]
    if settings.https_port:
        servers.append(await loop.create_server(lambda: ClientProtocol(app, b"https"),
                                                **listen_on(settings.host, settings.https_port, reuse_port=True),
                                                ssl=app.certificates.server_context, ssl_handshake_timeout=10))
    if settings.admin_port:
        servers.append(await loop.create_server(lambda: AdminProtocol(app),
                                                **listen_on(settings.admin_host, settings.admin_port + worker)))
    gc.collect()
    gc.freeze()  # start-up objects never need scanning again
    gc.set_threshold(50_000, 50, 100)  # per-request objects die by refcount; collect cycles rarely
    log.info("proxy worker %d (pid %d) serving http://%s:%d%s, routing version %s", worker, os.getpid(),
             settings.host, settings.port, f" https port {settings.https_port}" if settings.https_port else "",
             app.snapshot.version)
    await stop.wait()
    for server in servers:
        server.close()
    deadline = loop.time() + GRACE_S
    while any(c.active is not None for c in app.connections) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    for conn in list(app.connections):
        conn.transport.close()
    await app.stop()


def listen_on(host: str, port: int, reuse_port: bool = False) -> dict:
    """``create_server`` arguments for a listener. An IP literal gets a socket bound here: uvloop resolves a
    host given to ``create_server`` on libuv's thread pool, and once those threads exist the kernel takes a
    reference on the file at every read and write of a multi-threaded process. A name is left to uvloop."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return {"host": host, "port": port, "reuse_port": reuse_port, "backlog": BACKLOG}
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # as create_server does
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return {"sock": sock}


def run_worker(settings: ProxySettings, worker: int) -> None:
    codec.reseed_request_ids()  # after the fork: workers must not share the id prefix and counter
    uvloop.run(serve(settings, worker))


def run(settings: ProxySettings) -> None:
    _check_ports(settings)
    if settings.workers <= 1:
        run_worker(settings, 0)
        return
    children: dict[int, int] = {}  # pid -> worker index
    stopping = False

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:
            code = 0
            _die_with_parent()
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                run_worker(settings, index)
            except BaseException:
                log.exception("proxy worker %d crashed", index)
                code = 1
            os._exit(code)
        children[pid] = index

    def kill_stragglers() -> None:
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def forward(signum, _frame) -> None:
        nonlocal stopping
        if not stopping:  # workers get GRACE_S to drain; whatever is left after that is killed
            timer = threading.Timer(GRACE_S + 10.0, kill_stragglers)
            timer.daemon = True
            timer.start()
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for index in range(settings.workers):
        spawn(index)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        index = children.pop(pid, None)
        if index is not None and not stopping:
            log.error("proxy worker %d (pid %d) exited with status %s; restarting it", index, pid, status)
            time.sleep(0.5)
            spawn(index)


def _die_with_parent() -> None:
    """Linux: a worker gets SIGTERM if the parent process dies (even by SIGKILL), so none is orphaned."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _check_ports(settings: ProxySettings) -> None:
    """Fail fast, before forking, when a port is taken by something that does not share it."""
    for port in (settings.port, settings.https_port):
        if not port:
            continue
        with socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            probe.bind((settings.host, port))
