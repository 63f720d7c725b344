"""The Celery app: broker on Redis, configuration from Django settings (CELERY_*)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "veloflux_site.settings")

app = Celery("veloflux_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
