"""Carry platform events into the realtime hub until stopped (several may run: publications are idempotent)."""

from __future__ import annotations

import asyncio
import contextlib

from django.conf import settings
from django.core.management.base import BaseCommand

from veloflux_site.realtime.bridge import run_bridge


class Command(BaseCommand):
    help = "Forward platform events (health, alerts, config changes, billing) into hub channels."

    def handle(self, *args, **options):
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_bridge(settings.REDIS_URL))
