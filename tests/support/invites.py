"""Join a person to another tenant the only way there is: an invitation they accept."""

from __future__ import annotations

import re

from django.core import mail

from tests.support.actors import Actor, Api
from tests.support.assertions import assert_ok

LINK = re.compile(r"/api/invitations/([A-Za-z0-9_-]{20,})/accept")


def join_by_invitation(api: Api, inviter: Actor, invitee: Actor, role: str = "member") -> dict:
    """``inviter`` invites ``invitee`` into the inviter's tenant; the invitee accepts with the mailed
    token (pytest-django keeps mails in ``mail.outbox``; tests/test_invitations.py uses real SMTP)."""
    assert_ok(api.as_(inviter).post(f"/api/tenants/{inviter.tenant_id}/users",
                                    {"email": invitee.email, "role": role}), 202)
    return assert_ok(api.as_(invitee).post(f"/api/invitations/{token_mailed_to(invitee.email)}/accept"))


def token_mailed_to(address: str) -> str:
    """The token of the newest invitation mailed to ``address`` (pytest-django's ``mail.outbox``)."""
    sent = [m for m in mail.outbox if address in m.to]
    assert sent, f"no mail to {address}"
    return LINK.search(sent[-1].body).group(1)
