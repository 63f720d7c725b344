"""``python manage.py runhealthchecks``: the long-running active health-check sweeper.

A dedicated loop rather than a Celery beat task per round: see ``balancer.health.sweep``.
Any number may run (claims are atomic); SIGTERM/SIGINT stop claiming and finish the probes in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal

from django.core.management.base import BaseCommand

from balancer.health.sweep import DEFAULT_BATCH, DEFAULT_CONCURRENCY, HealthSweeper


class Command(BaseCommand):
    help = "Run the active health-check sweeper (claims due backends, probes them, records results)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="probes in flight at most")
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="backends claimed per call")
        parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
        parser.add_argument("--worker-id", default=None, help="name in claims and heartbeats")
        parser.add_argument("--no-uvloop", action="store_true", help="use the default asyncio loop")

    def handle(self, *args, **options) -> None:
        # Everything loaded so far (Django, settings, modules) lives as long as the process: keep it out of
        # the cyclic collector, whose full passes would otherwise walk it every few thousand probes.
        gc.freeze()
        sweeper = HealthSweeper(worker_id=options["worker_id"], batch_size=options["batch_size"],
                                concurrency=options["concurrency"])

        async def main() -> dict:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(sig, stop.set)
            self.stdout.write(f"health sweeper {sweeper.worker_id} running "
                              f"(concurrency {sweeper.concurrency}, batch {sweeper.batch_size})")
            self.stdout.flush()
            return await sweeper.run(stop, duration=options["duration"])

        if options["no_uvloop"]:
            totals = asyncio.run(main())
        else:
            try:
                import uvloop
            except ImportError:
                totals = asyncio.run(main())
            else:
                totals = uvloop.run(main())
        self.stdout.write(f"health sweeper stopped: {totals}")
