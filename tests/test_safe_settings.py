"""Development settings are never served on a non-loopback address; production errors show no settings.

Before the fix nothing stopped debug mode (on by default) from listening on 0.0.0.0, where a
500 shows settings and source to anyone; bin/up ran development settings.
"""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from tests.support.assertions import assert_error
from tests.support.procfile_web import ROOT, ProcfileWeb

SECRET = "s" * 20 + "-a-production-secret-for-tests-only-0123456789"
PRODUCTION = {"VF_ENV": "production", "VF_SECRET_KEY": SECRET, "VF_PASSWORD_HASHER": "pbkdf2"}


def manage_check(**env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "VF_ENV": "development", **env}
    full.pop("VF_DEBUG", None) if "VF_DEBUG" not in env else None
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=full, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("env", [
    {"VF_WEB_HOST": "0.0.0.0"},
    {"VF_WEB_HOST": "10.1.2.3"},
    {"VF_WEB_HOST": "::"},
    {"VF_WEB_HOST": "0.0.0.0", **PRODUCTION, "VF_DEBUG": "true"},
])
def test_it_refuses_to_start_in_debug_mode_on_a_non_loopback_address(env):
    result = manage_check(**env)
    assert result.returncode != 0
    assert "is not a loopback address, and debug mode is on" in result.stderr


@pytest.mark.parametrize("env", [
    {"VF_WEB_HOST": "127.0.0.1"},
    {"VF_WEB_HOST": "localhost"},
    {"VF_WEB_HOST": "0.0.0.0", **PRODUCTION},
])
def test_it_starts_in_debug_mode_on_loopback_and_in_production_anywhere(env):
    result = manage_check(**env)
    assert result.returncode == 0, result.stderr


def test_it_refuses_a_request_that_arrived_on_a_non_loopback_address_in_debug_mode(api, settings):
    settings.DEBUG = True
    on = {"HTTP_HOST": "localhost"}
    assert_error(api.get("/health", SERVER_NAME="192.0.2.10", **on), 403, "debug_mode_local_only")
    assert api.get("/health", SERVER_NAME="127.0.0.1", **on).status_code == 200
    settings.DEBUG = False
    assert api.get("/health", SERVER_NAME="192.0.2.10", **on).status_code == 200


@pytest.fixture(scope="module")
def failing_web(redis_server):
    """The Procfile's web process with production settings, plus views that fail on purpose."""
    servers = {}

    def start(env_name: str) -> ProcfileWeb:
        if env_name not in servers:
            extra = {"DJANGO_SETTINGS_MODULE": "tests.support.failing_settings", **PRODUCTION, "VF_ENV": env_name}
            servers[env_name] = ProcfileWeb(redis_server.url, trusted_proxies="", extra_env=extra).wait_ready()
        return servers[env_name]

    yield start
    for server in servers.values():
        server.stop()


@pytest.mark.parametrize("path", ["/test/broken-page", "/test/broken-api"])
def test_it_answers_a_500_in_production_without_settings_or_code(failing_web, path):
    response = httpx.get(failing_web("production").url + path, headers={"X-Request-ID": "req-prod-500"}, timeout=10)
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"error": {"code": "internal_error", "message": "An unexpected error happened on our "
                               "side. It is logged; quote the request id when you contact support.",
                               "request_id": "req-prod-500"}}


def test_it_shows_the_debug_page_only_in_development_on_loopback(failing_web):
    # The control: what the production answer above must not look like.
    response = httpx.get(failing_web("development").url + "/test/broken-page", timeout=10)
    assert response.status_code == 500 and "boom" in response.text and "SECRET_KEY" in response.text


def use_production_settings(root, **env: str) -> dict[str, str]:
    """bin/up's settings step (bin/lib/bootstrap.sh) run against ``root``; the variables it exports."""
    script = ('. bin/lib/bootstrap.sh; VF_ROOT="$1"; use_production_settings; '
              'printf "%s\\n" "$VF_ENV" "$VF_SECRET_KEY" "$VF_SECURE_COOKIES" "$VF_EMAIL_BACKEND"')
    names = ("VF_ENV", "VF_SECRET_KEY", "VF_SECURE_COOKIES", "VF_EMAIL_BACKEND")
    clean = {k: v for k, v in os.environ.items() if k not in names}
    result = subprocess.run(["bash", "-c", script, "bash", str(root)], cwd=ROOT, env={**clean, **env},
                            capture_output=True, text=True, timeout=30, check=True)
    return dict(zip(names, result.stdout.splitlines(), strict=True))


def test_it_makes_bin_up_use_production_settings_with_a_kept_secret_key(tmp_path):
    first = use_production_settings(tmp_path)
    assert first["VF_ENV"] == "production" and len(first["VF_SECRET_KEY"]) >= 50
    assert first["VF_EMAIL_BACKEND"] == "console"  # no mail server on a fresh machine: invitations still work
    assert (tmp_path / "var" / "secret_key").stat().st_mode & 0o777 == 0o600
    assert use_production_settings(tmp_path) == first  # the same key on the next start: sessions survive
    assert manage_check(**first, VF_PASSWORD_HASHER="pbkdf2").returncode == 0
    # An operator's explicit choice wins.
    chosen = use_production_settings(tmp_path, VF_ENV="development", VF_SECRET_KEY="mine")
    assert chosen["VF_ENV"] == "development" and chosen["VF_SECRET_KEY"] == "mine"
    assert use_production_settings(tmp_path, VF_EMAIL_BACKEND="smtp")["VF_EMAIL_BACKEND"] == "smtp"
    (tmp_path / ".env").write_text("VF_ENV=development\nVF_SECRET_KEY=from-dotenv\n")
    assert use_production_settings(tmp_path)["VF_ENV"] == ""  # left to .env, which honcho and settings read
