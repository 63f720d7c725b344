"""The validation rules on their own: durations, addresses, hosts, health checks."""

from __future__ import annotations

import pytest

from balancer.validation import clean_address, clean_health_check, clean_host, parse_duration


@pytest.mark.parametrize("given, seconds", [("5s", 5.0), ("500ms", 0.5), (" 2 s ", 2.0), ("1.5s", 1.5), ("2m", 120.0),
                                            (3, 3.0), (0.25, 0.25), ("10", 10.0)])
def test_it_parses_durations(given, seconds):
    assert parse_duration(given) == seconds


@pytest.mark.parametrize("given", ["", "fast", "5h", "-1s", 0, -2, True, None, "0ms", 7200, [5]])
def test_it_rejects_bad_durations(given):
    with pytest.raises(ValueError):
        parse_duration(given)


def test_it_normalises_addresses():
    assert clean_address("[2001:DB8:0:0::1]:80") == "[2001:db8::1]:80"
    assert clean_address(" Backend-1.Svc.Local:8080 ") == "backend-1.svc.local:8080"
    assert clean_address("web_1:80") == "web_1:80"  # a Docker Compose service name
    with pytest.raises(ValueError):
        clean_address("010.0.0.1:80")


def test_it_normalises_hosts():
    assert clean_host("*.Example.COM.") == "*.example.com"
    with pytest.raises(ValueError, match="first label"):
        clean_host("a.*.example.com")


def test_it_treats_an_empty_health_check_as_inherit_everything():
    assert clean_health_check({}) == (None, {})
    assert clean_health_check(None) == (None, {})


def test_it_reports_every_bad_health_check_field_at_once():
    _, errors = clean_health_check({"type": "udp", "method": "FETCH", "rise": 0, "expected_status": [], "fall": "x"})
    assert set(errors) == {"health_check.type", "health_check.method", "health_check.rise",
                           "health_check.expected_status", "health_check.fall"}
