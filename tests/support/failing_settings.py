"""The project's settings with the URLconf of tests.support.failing_urls, for a real server that must fail."""

from veloflux_site.settings import *  # noqa: F403

ROOT_URLCONF = "tests.support.failing_urls"
