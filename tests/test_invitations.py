"""Users belong to tenants by consent: adding a person who has an account anywhere makes an invitation,
delivered by e-mail (a real SMTP server here), that only that person can accept, once, before it expires."""

from __future__ import annotations

import time

import pytest

from tests.support.actors import PASSWORD, actor_for
from tests.support.assertions import assert_error, assert_ok, audit_actions, redis_dump
from tests.support.invites import LINK
from tests.support.parallel import run_parallel, status_counts
from tests.support.smtp_server import smtp_server_fixture  # noqa: F401 - the smtp_server fixture


def users_url(tenant_id: str, user_id: str | None = None) -> str:
    return f"/api/tenants/{tenant_id}/users" + (f"/{user_id}" if user_id else "")


def invitations_url(tenant_id: str, invitation_id: str | None = None) -> str:
    return f"/api/tenants/{tenant_id}/invitations" + (f"/{invitation_id}" if invitation_id else "")


def accept_url(token: str) -> str:
    return f"/api/invitations/{token}/accept"


def token_sent_to(server, address: str) -> str:
    """The token out of the newest invitation mail that reached ``address`` over SMTP."""
    messages = server.inbox.to(address)
    assert messages, f"no mail reached {address}"
    found = LINK.search(messages[-1].get_body(("plain",)).get_content())
    assert found, messages[-1].as_string()
    return found.group(1)


def tenants_of(api, actor) -> set[str]:
    return {t["tenant_id"] for t in assert_ok(api.as_(actor).get("/api/profile"))["tenants"]}


# --- the reproducer of issue 12, point 6 -------------------------------------------------------
def test_it_invites_another_tenants_owner_instead_of_adding_them(api, owner, outsider):
    before_b = assert_ok(api.as_(outsider).get("/api/profile"))
    response = api.as_(owner).post(users_url(owner.tenant_id), {"email": outsider.email, "role": "member",
                                                                "name": "Renamed By A"})
    body = assert_ok(response, 202)
    assert body["email"] == outsider.email and body["role"] == "member" and body["status"] == "pending"
    assert "token" not in body and "token_hash" not in body
    # B's owner is not in A: not listed, not reachable, not renamable.
    members = assert_ok(api.as_(owner).get(users_url(owner.tenant_id)))["items"]
    assert outsider.email not in {m["email"] for m in members}
    assert tenants_of(api, outsider) == {outsider.tenant_id}
    assert_error(api.as_(owner).put(users_url(owner.tenant_id, outsider.id), {"name": "Pwned"}), 404)
    after_b = assert_ok(api.as_(outsider).get("/api/profile"))
    assert (after_b["first_name"], after_b["last_name"]) == (before_b["first_name"], before_b["last_name"])
    # B's owner's next login without a tenant still lands in B.
    login = assert_ok(api.post("/api/auth/login", {"email": outsider.email, "password": PASSWORD}))
    assert login["user"]["tenant_id"] == outsider.tenant_id
    assert_error(api.post("/api/auth/login", {"email": outsider.email, "password": PASSWORD,
                                              "tenant_id": owner.tenant_id}), 403, "not_a_member")


# --- lifecycle ---------------------------------------------------------------------------------
def test_it_mails_an_invitation_that_the_invitee_accepts(api, owner, outsider, smtp_server):
    invitation = assert_ok(api.as_(owner).post(users_url(owner.tenant_id), {"email": outsider.email,
                                                                            "role": "admin"}), 202)
    mail = smtp_server.inbox.to(outsider.email)[-1]
    assert "Acme Corp" in mail["Subject"]
    token = token_sent_to(smtp_server, outsider.email)
    assert token not in repr(redis_dump())  # stored hashed only

    pending = assert_ok(api.as_(outsider).get("/api/profile/invitations"))
    assert [(i["id"], i["tenant_name"], i["role"]) for i in pending["items"]] == [
        (invitation["id"], "Acme Corp", "admin")]

    body = assert_ok(api.as_(outsider).post(accept_url(token)))
    assert body["tenant"] == {"id": owner.tenant_id, "name": "Acme Corp"} and body["role"] == "admin"
    assert tenants_of(api, outsider) == {outsider.tenant_id, owner.tenant_id}
    member = assert_ok(api.as_(owner).get(users_url(owner.tenant_id, outsider.id)))
    assert member["role"] == "admin"
    assert assert_ok(api.as_(outsider).get("/api/profile/invitations"))["items"] == []
    assert assert_ok(api.as_(owner).get(invitations_url(owner.tenant_id)))["items"] == []
    assert audit_actions(owner.tenant_id)[-3:] == ["invitation.create", "invitation.accept", "user.add"]
    assert "invitation.accept" in audit_actions(None)  # the invitee's side (platform log)
    # Single use: the same link again is unknown.
    assert_error(api.as_(outsider).post(accept_url(token)), 404, "not_found")


def test_it_lets_a_new_person_accept_by_choosing_a_password(api, admin, smtp_server):
    invitation = assert_ok(api.as_(admin).post(invitations_url(admin.tenant_id),
                                               {"email": "Newbie@Example.test", "role": "viewer"}), 201)
    assert invitation["email"] == "newbie@example.test"
    token = token_sent_to(smtp_server, "newbie@example.test")
    assert_error(api.post(accept_url(token), {}), 400, "validation_error")
    body = assert_ok(api.post(accept_url(token), {"password": "fresh-secret-1", "name": "New Bie"}), 201)
    assert body["user"]["tenant_id"] == admin.tenant_id and body["user"]["role"] == "viewer"
    assert body["user"]["first_name"] == "New" and body["token"]
    login = assert_ok(api.post("/api/auth/login", {"email": "newbie@example.test", "password": "fresh-secret-1"}))
    assert login["user"]["tenant_id"] == admin.tenant_id


def test_it_refuses_an_expired_invitation(api, owner, outsider, smtp_server, settings):
    settings.INVITATION_TTL = 1
    assert_ok(api.as_(owner).post(invitations_url(owner.tenant_id), {"email": outsider.email}), 201)
    token = token_sent_to(smtp_server, outsider.email)
    time.sleep(1.2)
    assert assert_ok(api.as_(outsider).get("/api/profile/invitations"))["items"] == []
    assert assert_ok(api.as_(owner).get(invitations_url(owner.tenant_id)))["items"] == []
    before = redis_dump()
    assert_error(api.as_(outsider).post(accept_url(token)), 410, "invitation_expired")
    assert_error(api.as_(owner).post(accept_url(token)), 404, "not_found")  # not theirs: not even "expired"
    assert redis_dump() == before
    assert tenants_of(api, outsider) == {outsider.tenant_id}
    # An expired invitation no longer blocks a new one.
    assert_ok(api.as_(owner).post(invitations_url(owner.tenant_id), {"email": outsider.email}), 201)


def test_it_accepts_an_invitation_once_under_concurrency(api, owner, outsider, smtp_server):
    assert_ok(api.as_(owner).post(invitations_url(owner.tenant_id), {"email": outsider.email}), 201)
    token = token_sent_to(smtp_server, outsider.email)
    responses = run_parallel(8, lambda _: api.as_(outsider).post(accept_url(token)))
    counts = status_counts(responses)
    # One joins; each other hears that the invitation is used up (404) or that they are a member now (409).
    assert counts[200] == 1 and counts[404] + counts[409] == 7, counts
    assert audit_actions(owner.tenant_id).count("invitation.accept") == 1
    assert audit_actions(owner.tenant_id).count("user.add") == 5  # the fixture's four and this one
    assert assert_ok(api.as_(owner).get(users_url(owner.tenant_id)))["total_count"] == 5


def test_it_creates_one_account_when_a_new_person_accepts_twice_at_once(api, owner, smtp_server):
    assert_ok(api.as_(owner).post(invitations_url(owner.tenant_id), {"email": "twice@example.test"}), 201)
    token = token_sent_to(smtp_server, "twice@example.test")
    responses = run_parallel(6, lambda i: api.post(accept_url(token), {"password": f"password-{i}-ok"}))
    counts = status_counts(responses)
    assert counts[201] == 1 and sum(counts.values()) == 6, counts
    assert set(counts) <= {201, 404, 401}, counts
    members = assert_ok(api.as_(owner).get(users_url(owner.tenant_id)))["items"]
    assert [m["email"] for m in members].count("twice@example.test") == 1


def test_it_lets_only_the_invited_person_accept(api, owner, outsider, member, smtp_server):
    assert_ok(api.as_(owner).post(invitations_url(owner.tenant_id), {"email": outsider.email}), 201)
    token = token_sent_to(smtp_server, outsider.email)
    before = redis_dump()
    assert_error(api.as_(member).post(accept_url(token)), 404, "not_found")  # as for an unknown token
    assert_error(api.post(accept_url(token), {"password": "takeover-secret"}), 401, "not_authenticated")
    assert redis_dump() == before
    assert_ok(api.as_(outsider).post(accept_url(token)))


def test_it_refuses_an_api_key_or_a_made_up_token(api, owner, outsider, smtp_server):
    key = assert_ok(api.as_(outsider).post("/api/auth/api-keys", {"name": "k", "role": "owner"}), 201)["key"]
    assert_ok(api.as_(owner).post(invitations_url(owner.tenant_id), {"email": outsider.email}), 201)
    token = token_sent_to(smtp_server, outsider.email)
    assert_error(api.with_headers(HTTP_X_API_KEY=key).post(accept_url(token)), 403, "wrong_account")
    assert_error(api.as_(outsider).post(accept_url("x" * 43)), 404, "not_found")
    assert_error(api.as_(outsider).post(accept_url("{bad}")), 404, "not_found")


def test_it_revokes_an_invitation(api, admin, outsider, smtp_server):
    invitation = assert_ok(api.as_(admin).post(invitations_url(admin.tenant_id), {"email": outsider.email}), 201)
    token = token_sent_to(smtp_server, outsider.email)
    listed = assert_ok(api.as_(admin).get(invitations_url(admin.tenant_id)))
    assert [i["id"] for i in listed["items"]] == [invitation["id"]] and listed["total_count"] == 1
    assert "token" not in repr(listed)
    assert assert_ok(api.as_(admin).get(invitations_url(admin.tenant_id, invitation["id"])))["email"] == outsider.email
    assert api.as_(admin).delete(invitations_url(admin.tenant_id, invitation["id"])).status_code == 204
    assert_error(api.as_(admin).delete(invitations_url(admin.tenant_id, invitation["id"])), 404, "not_found")
    assert_error(api.as_(outsider).post(accept_url(token)), 404, "not_found")
    assert audit_actions(admin.tenant_id)[-1] == "invitation.revoke"


def test_it_lets_the_invitee_decline(api, owner, outsider, smtp_server):
    invitation = assert_ok(api.as_(owner).post(invitations_url(owner.tenant_id), {"email": outsider.email}), 201)
    token = token_sent_to(smtp_server, outsider.email)
    # Someone else cannot decline it for them.
    assert_error(api.as_(owner).delete(f"/api/profile/invitations/{invitation['id']}"), 404, "not_found")
    assert api.as_(outsider).delete(f"/api/profile/invitations/{invitation['id']}").status_code == 204
    assert_error(api.as_(outsider).post(accept_url(token)), 404, "not_found")
    assert audit_actions(owner.tenant_id)[-1] == "invitation.decline"
    assert "invitation.decline" in audit_actions(None)


@pytest.mark.parametrize("inviter, role, allowed", [
    ("admin", "owner", False), ("admin", "admin", True), ("admin", "viewer", True),
    ("owner", "owner", True),
])
def test_it_caps_the_invited_role_at_the_inviters(api, tenant_a, outsider, inviter, role, allowed):
    actor = tenant_a[inviter]
    before = redis_dump()
    for url in (invitations_url(actor.tenant_id), users_url(actor.tenant_id)):
        response = api.as_(actor).post(url, {"email": outsider.email, "role": role})
        if allowed:
            assert response.status_code in (201, 202), response.content
            break
        assert_error(response, 403, "permission_denied")
        assert redis_dump() == before


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_it_refuses_invitations_below_admin(api, tenant_a, outsider, role):
    actor = tenant_a[role]
    assert_error(api.as_(actor).get(invitations_url(actor.tenant_id)), 403, "permission_denied")
    assert_error(api.as_(actor).post(invitations_url(actor.tenant_id), {"email": outsider.email}), 403)


def test_it_refuses_a_second_pending_invitation_and_a_member(api, owner, member, outsider):
    assert_ok(api.as_(owner).post(invitations_url(owner.tenant_id), {"email": outsider.email}), 201)
    assert_error(api.as_(owner).post(invitations_url(owner.tenant_id), {"email": outsider.email}), 409,
                 "invitation_pending")
    assert_error(api.as_(owner).post(users_url(owner.tenant_id), {"email": outsider.email}), 409,
                 "invitation_pending")
    assert_error(api.as_(owner).post(invitations_url(owner.tenant_id), {"email": member.email}), 409, "conflict")


@pytest.mark.parametrize("body, field", [({}, "email"), ({"email": "nope"}, "email"),
                                         ({"email": "a@b.test", "role": "boss"}, "role")])
def test_it_validates_an_invitation(api, owner, body, field):
    before = redis_dump()
    error = assert_error(api.as_(owner).post(invitations_url(owner.tenant_id), body), 400, "validation_error")
    assert field in error["fields"]
    assert redis_dump() == before


def test_it_withdraws_the_invitation_when_the_mail_cannot_be_sent(api, owner, outsider, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nothing listens
    assert_error(api.as_(owner).post(invitations_url(owner.tenant_id), {"email": outsider.email}), 503,
                 "email_unavailable")
    assert assert_ok(api.as_(owner).get(invitations_url(owner.tenant_id)))["items"] == []


def test_it_enforces_the_user_limit_on_accept(api, owner, outsider, platform_admin, smtp_server):
    assert_ok(api.as_(owner).post(invitations_url(owner.tenant_id), {"email": outsider.email}), 201)
    token = token_sent_to(smtp_server, outsider.email)
    assert_ok(api.as_(platform_admin).put(f"/api/tenants/{owner.tenant_id}", {"plan": "free"}))
    error = assert_error(api.as_(outsider).post(accept_url(token)), 403, "limit_exceeded")
    assert error["limit"] == "max_users"
    assert tenants_of(api, outsider) == {outsider.tenant_id}


def test_it_lets_a_platform_admin_invite_any_role(api, owner, outsider, platform_admin, smtp_server):
    body = assert_ok(api.as_(platform_admin).post(users_url(owner.tenant_id), {"email": outsider.email,
                                                                               "role": "owner"}), 202)
    assert body["role"] == "owner"
    token = token_sent_to(smtp_server, outsider.email)
    assert_ok(api.as_(actor_for(outsider.id, outsider.tenant_id)).post(accept_url(token)))
    assert assert_ok(api.as_(owner).get(users_url(owner.tenant_id, outsider.id)))["role"] == "owner"


def test_it_drops_a_deleted_tenants_invitations(api, owner, outsider, smtp_server):
    assert_ok(api.as_(owner).post(invitations_url(owner.tenant_id), {"email": outsider.email}), 201)
    token = token_sent_to(smtp_server, outsider.email)
    assert api.as_(owner).delete(f"/api/tenants/{owner.tenant_id}").status_code == 204
    assert assert_ok(api.as_(outsider).get("/api/profile/invitations"))["items"] == []
    assert_error(api.as_(outsider).post(accept_url(token)), 404, "not_found")
    assert [k for k in redis_dump() if k.startswith("vf:invitation")] == []


def test_it_limits_how_many_invitation_mails_a_tenant_sends(api, owner, settings, smtp_server):
    settings.INVITATION_RATE_PER_HOUR = 3
    for n in range(3):
        assert_ok(api.as_(owner).post(invitations_url(owner.tenant_id), {"email": "target@example.test"}), 201)
        invitation = assert_ok(api.as_(owner).get(invitations_url(owner.tenant_id)))["items"][0]
        assert api.as_(owner).delete(invitations_url(owner.tenant_id, invitation["id"])).status_code == 204
        assert len(smtp_server.inbox.to("target@example.test")) == n + 1
    response = api.as_(owner).post(invitations_url(owner.tenant_id), {"email": "target@example.test"})
    error = assert_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) >= 1 and error["retry_after"] >= 1
    assert len(smtp_server.inbox.to("target@example.test")) == 3


def test_it_keeps_a_tenant_name_from_adding_mail_headers(api, owner, outsider, smtp_server):
    assert_ok(api.as_(owner).put(f"/api/tenants/{owner.tenant_id}", {"name": "Evil\nBcc: spy@evil.test"}))
    assert_ok(api.as_(owner).post(invitations_url(owner.tenant_id), {"email": outsider.email}), 201)
    mail = smtp_server.inbox.to(outsider.email)[-1]
    assert mail["Bcc"] is None and smtp_server.inbox.to("spy@evil.test") == []
    assert mail["Subject"] == "You are invited to Evil Bcc: spy@evil.test on VeloFlux"


def test_it_gives_an_api_key_no_invitations(api, owner):
    key = assert_ok(api.as_(owner).post("/api/auth/api-keys", {"name": "k", "role": "owner"}), 201)["key"]
    assert_error(api.with_headers(HTTP_X_API_KEY=key).get("/api/profile/invitations"), 403, "permission_denied")
