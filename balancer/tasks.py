"""Celery tasks: thin, idempotent, time-bounded; each calls one service function.

Schedules are in ``veloflux_site/celery.py`` (``SCHEDULES``)."""

from __future__ import annotations

from celery import shared_task

from balancer import domains
from balancer.health import alerts, housekeeping
from balancer.health.state import mirror_passive_ejections
from balancer.health.sweep import SAFETY_NET_LATENESS, default_worker_id, sweep_once
from veloflux_site.storage.connection import get_redis


@shared_task(name="balancer.tasks.health_sweep", ignore_result=True, soft_time_limit=20, time_limit=30)
def health_sweep(min_lateness: float = SAFETY_NET_LATENESS) -> dict:
    """Safety net behind the sweeper process: checks backends overdue by ``min_lateness`` seconds and
    mirrors the proxies' passive ejections (both idempotent)."""
    client = get_redis()
    report = sweep_once(client, worker_id=default_worker_id("celery-sweep"), min_lateness=min_lateness)
    mirror_passive_ejections(client)
    return {"claimed": report.claimed, "recorded": report.recorded, "transitions": len(report.transitions)}


@shared_task(name="balancer.tasks.evaluate_health_alerts", ignore_result=True, soft_time_limit=20, time_limit=30)
def evaluate_health_alerts() -> dict:
    return alerts.evaluate_health_alerts(get_redis())


@shared_task(name="balancer.tasks.evaluate_error_rate_alerts", ignore_result=True, soft_time_limit=30,
             time_limit=45)
def evaluate_error_rate_alerts() -> dict:
    return alerts.evaluate_error_rate_alerts(get_redis())


@shared_task(name="balancer.tasks.rollup_metrics", ignore_result=True, soft_time_limit=45, time_limit=55)
def rollup_metrics() -> dict:
    return housekeeping.rollup_metrics(get_redis())


@shared_task(name="balancer.tasks.trim_streams", ignore_result=True, soft_time_limit=300, time_limit=330)
def trim_streams() -> dict:
    return housekeeping.trim_streams(get_redis())


@shared_task(name="balancer.tasks.clean_expired_auth_state", ignore_result=True, soft_time_limit=300,
             time_limit=330)
def clean_expired_auth_state() -> dict:
    return housekeeping.clean_expired_auth_state(get_redis())


@shared_task(name="balancer.tasks.recheck_pending_domains", ignore_result=True, soft_time_limit=240,
             time_limit=270)
def recheck_pending_domains() -> dict:
    """Try to prove pending domain claims (DNS TXT, HTTP token); forget the ones that expired."""
    return domains.recheck_pending()
