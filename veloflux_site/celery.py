"""The Celery app: broker on Redis, configuration from Django settings (CELERY_*), beat schedules in Redis.

Beat uses celery-redbeat: the schedule lives in Redis under ``vf:redbeat:`` and a lock
(``vf:redbeat::lock``, extended every beat tick, expiring after ``VF_BEAT_LOCK_TIMEOUT``)
lets exactly one beat run in a cluster; a second beat waits for the lock and takes over
when the holder dies. Workers announce themselves in ``keys.heartbeat("worker")``.

Run: ``celery -A veloflux_site worker -l info`` and ``celery -A veloflux_site beat -l info``.
"""

import logging
import os
import threading
import time

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from veloflux_site.env import env_duration

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "veloflux_site.settings")

log = logging.getLogger("veloflux.celery")

app = Celery("veloflux_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# name -> (task, every seconds, expires seconds): a run that could not start in time is dropped,
# the next one comes soon (every task is idempotent).
SCHEDULES = {
    "health-sweep-safety-net": ("balancer.tasks.health_sweep", 1.0, 2.0),
    "health-alerts": ("balancer.tasks.evaluate_health_alerts", 15.0, 15.0),
    "error-rate-alerts": ("balancer.tasks.evaluate_error_rate_alerts", 60.0, 60.0),
    "metrics-rollup": ("balancer.tasks.rollup_metrics", 60.0, 60.0),
    "stream-trim": ("balancer.tasks.trim_streams", 3600.0, 600.0),
    "expired-auth-cleanup": ("balancer.tasks.clean_expired_auth_state", 3600.0, 600.0),
    "pending-domains-recheck": ("balancer.tasks.recheck_pending_domains", 300.0, 300.0),
}

REDBEAT_KEY_PREFIX = "vf:redbeat:"

app.conf.update(
    beat_schedule={name: {"task": task, "schedule": every, "options": {"expires": expires}}
                   for name, (task, every, expires) in SCHEDULES.items()},
    beat_scheduler="redbeat.RedBeatScheduler",
    beat_max_loop_interval=1,
    redbeat_key_prefix=REDBEAT_KEY_PREFIX,
    # Said explicitly: the broker's transport options (its key prefix) are not the beat client's.
    redbeat_redis_options={},
    redbeat_lock_timeout=int(env_duration("VF_BEAT_LOCK_TIMEOUT", "15s")),
    worker_hijack_root_logger=False,
)


@app.on_after_configure.connect
def _redbeat_on_the_broker(sender: Celery, **kwargs) -> None:
    from django.conf import settings

    sender.conf.redbeat_redis_url = settings.CELERY_BROKER_URL


class WorkerHeartbeat:
    """ZADD ``keys.heartbeat("worker")`` worker -> epoch seconds every few seconds, from the worker's main process."""

    every = 5.0

    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        self.stopped = threading.Event()

    def beat(self) -> None:
        from veloflux_site.storage import keys
        from veloflux_site.storage.connection import get_redis

        get_redis().zadd(keys.heartbeat("worker"), {self.worker_id: time.time()})

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.beat()
            except Exception as exc:  # a heartbeat must never kill the worker
                log.warning("worker heartbeat failed: %s", exc)
            self.stopped.wait(self.every)

    def stop(self) -> None:
        from veloflux_site.storage import keys
        from veloflux_site.storage.connection import get_redis

        self.stopped.set()
        try:
            get_redis().zrem(keys.heartbeat("worker"), self.worker_id)
        except Exception as exc:
            log.warning("could not remove worker heartbeat: %s", exc)


_heartbeat: WorkerHeartbeat | None = None


@worker_ready.connect
def _start_heartbeat(sender=None, **kwargs) -> None:
    global _heartbeat
    _heartbeat = WorkerHeartbeat(getattr(sender, "hostname", None) or f"celery@{os.getpid()}")
    threading.Thread(target=_heartbeat.run, name="vf-heartbeat", daemon=True).start()


@worker_shutdown.connect
def _stop_heartbeat(**kwargs) -> None:
    if _heartbeat is not None:
        _heartbeat.stop()
