"""Concurrency: parallel writers never lose an update, and a unique name has exactly one winner."""

from __future__ import annotations

import json

from tests.support.actors import Api
from tests.support.assertions import assert_error, assert_ok
from tests.support.parallel import run_parallel, status_counts
from veloflux_site.storage import keys
from veloflux_site.storage.connection import get_redis

REGISTRATION = {"email": "race@example.test", "password": "s3cret-enough", "tenant_name": "Race Co"}


def test_it_lets_exactly_one_of_50_stale_writers_win(owner):
    url = f"/api/tenants/{owner.tenant_id}"

    def put(index: int):
        return Api().as_(owner).put(url, {"name": f"Name {index}", "version": 1})

    responses = run_parallel(50, put)
    assert status_counts(responses) == {200: 1, 409: 49}
    for response in responses:
        if response.status_code == 409:
            assert_error(response, 409, "version_conflict")
    winner = next(r for r in responses if r.status_code == 200).json()
    final = assert_ok(Api().as_(owner).get(url))
    assert final["version"] == 2 and final["name"] == winner["name"]


def test_it_applies_all_50_parallel_updates_without_a_version(owner, member):
    """No version sent: the server retries its read-modify-write, so every update lands, none is lost."""
    url = f"/api/tenants/{owner.tenant_id}/users/{member.id}"
    roles = ["viewer", "member"]

    def put(index: int):
        return Api().as_(owner).put(url, {"active": index % 3 != 0, "role": roles[index % 2]})

    responses = run_parallel(50, put)
    assert status_counts(responses) == {200: 50}
    final = assert_ok(Api().as_(owner).get(url))
    assert final["version"] == 51
    versions = sorted(r.json()["version"] for r in responses)
    assert versions == list(range(2, 52))  # each write saw a different state: no lost update


def warm_up_email_validation() -> None:
    """Django compiles its email regex on first use (a quarter second); 20 cold threads would each do it."""
    assert_error(Api().post("/api/auth/register", {"email": "warm@example.test"}), 400, "validation_error")


def test_it_registers_one_of_20_parallel_sign_ups_with_the_same_email(api):
    warm_up_email_validation()
    responses = run_parallel(20, lambda i: Api().post("/api/auth/register",
                                                      {**REGISTRATION, "tenant_name": f"Race {i}"}))
    assert status_counts(responses) == {201: 1, 409: 19}
    for response in responses:
        if response.status_code == 409:
            error = assert_error(response, 409, "email_taken")
            assert "email" in error["fields"]
    client = get_redis()
    assert client.zcard(keys.user_index()) == 1
    assert client.zcard(keys.tenant_index()) == 1  # the losers left no orphan tenant behind


def test_it_registers_20_parallel_tenants_with_the_same_name(api):
    warm_up_email_validation()
    responses = run_parallel(20, lambda i: Api().post("/api/auth/register",
                                                      {**REGISTRATION, "email": f"r{i}@example.test"}))
    assert status_counts(responses) == {201: 20}
    tenant_ids = {r.json()["user"]["tenant_id"] for r in responses}
    assert len(tenant_ids) == 20
    slugs = [get_redis().get(keys.tenant_record(t)) for t in tenant_ids]
    assert len({json.loads(s)["slug"] for s in slugs}) == 20


def test_it_adds_one_of_20_parallel_invitations_of_the_same_email(owner):
    url = f"/api/tenants/{owner.tenant_id}/users"
    responses = run_parallel(20, lambda i: Api().as_(owner).post(url, {"email": "dup@acme.test", "role": "viewer"}))
    assert status_counts(responses) == {201: 1, 409: 19}
    for response in responses:
        if response.status_code == 409:
            assert "email" in assert_error(response, 409)["fields"]
    assert assert_ok(Api().as_(owner).get(url))["total_count"] == 5  # the fixture's four and the one


def test_it_makes_one_account_when_20_parallel_tenants_name_the_same_new_owner(platform_admin):
    body = {"name": "Same Owner", "owner_email": "same@owner.test", "owner_password": "s3cret-enough"}
    responses = run_parallel(20, lambda i: Api().as_(platform_admin).post("/api/tenants", body))
    counts = status_counts(responses)
    # Creating a tenant for an existing user is allowed, so more than one may win; what matters is that
    # there is one account, every tenant that exists has it as owner, and nothing half-written is left.
    assert set(counts) <= {201, 409}
    client = get_redis()
    assert client.zcard(keys.user_index()) == 2  # the platform admin and the one owner
    tenants = client.zrange(keys.tenant_index(), 0, -1)
    assert len(tenants) == counts[201]
    owner_id = client.get(keys.user_email_index("same@owner.test"))
    for tenant_id in tenants:
        assert client.zrange(keys.tenant_members(tenant_id), 0, -1) == [owner_id]


def test_it_adds_one_of_20_parallel_invitations_of_an_existing_account(owner, outsider):
    url = f"/api/tenants/{owner.tenant_id}/users"
    responses = run_parallel(20, lambda i: Api().as_(owner).post(url, {"email": outsider.email}))
    assert status_counts(responses) == {202: 1, 409: 19}  # a person with an account is invited, once
    for response in responses:
        if response.status_code == 409:
            # The losers hear what happened, not a version they never sent.
            assert assert_error(response, 409, "invitation_pending")["fields"] == {"email": ["invitation pending"]}


def test_it_keeps_every_field_of_a_retried_update(owner, member):
    """A write that lost a race runs again: it must still apply everything the caller asked for."""
    url = f"/api/tenants/{owner.tenant_id}/users/{member.id}"
    responses = run_parallel(20, lambda i: Api().as_(owner).put(url, {"role": "viewer"} if i == 0
                                                                   else {"active": True}))
    assert status_counts(responses) == {200: 20}
    assert assert_ok(Api().as_(owner).get(url))["role"] == "viewer"


def test_it_lets_exactly_one_of_50_stale_member_updates_win(owner, member):
    url = f"/api/tenants/{owner.tenant_id}/users/{member.id}"
    responses = run_parallel(50, lambda i: Api().as_(owner).put(url, {"role": ["viewer", "admin"][i % 2],
                                                                      "version": 1}))
    assert status_counts(responses) == {200: 1, 409: 49}
    assert all(assert_error(r, 409, "version_conflict")["current_version"] == 2
               for r in responses if r.status_code == 409)
    assert assert_ok(Api().as_(owner).get(url))["version"] == 2


def test_it_rotates_a_refresh_token_once_under_parallel_use(owner):
    responses = run_parallel(10, lambda i: Api().post("/api/auth/refresh", {"refresh_token": owner.refresh_token}))
    assert status_counts(responses) == {200: 1, 401: 9}
    assert {assert_error(r, 401)["code"] for r in responses if r.status_code == 401} <= {"token_reused",
                                                                                        "token_revoked"}
    # Parallel reuse is reuse: the whole family, the winner's new pair included, is revoked.
    winner = next(r for r in responses if r.status_code == 200).json()
    assert_error(Api().post("/api/auth/refresh", {"refresh_token": winner["refresh_token"]}), 401, "token_revoked")
