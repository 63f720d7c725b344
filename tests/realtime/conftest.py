"""Realtime tests: the platform's hub API key (Centrifugo's server API compatibility mode) is set for the
servers the session starts (uvicorn reads the environment) and for the in-process API client."""

import os

from django.conf import settings

HUB_API_KEY = "test-hub-api-key-0123456789"
os.environ["VF_REALTIME_API_KEY"] = HUB_API_KEY
settings.REALTIME_API_KEY = HUB_API_KEY
