"""Hub channel names and who may do what on them.

Namespaces:
- ``tenant:<tenant_id>:<topic>`` — the tenant's users (any role) subscribe; member or higher publish.
- ``admin:<topic>``              — platform admins only.
- ``user:<user_id>``             — that user subscribes; only the server (platform admins, API) publishes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CHANNEL_PATTERN = (r"^(tenant:[A-Za-z0-9_\-]{1,64}:[A-Za-z0-9_.\-:]{1,128}|admin:[A-Za-z0-9_.\-:]{1,128}"
                   r"|user:[A-Za-z0-9_\-]{1,64})$")
_CHANNEL = re.compile(CHANNEL_PATTERN)


class ChannelError(ValueError):
    pass


@dataclass(frozen=True)
class Channel:
    name: str
    namespace: str  # tenant | admin | user
    owner: str | None  # tenant id or user id

    @classmethod
    def parse(cls, name: str) -> Channel:
        if not isinstance(name, str) or not _CHANNEL.match(name):
            raise ChannelError(f"invalid channel {name!r}: use tenant:<tenant_id>:<topic>, admin:<topic> "
                               "or user:<user_id>")
        namespace, _, rest = name.partition(":")
        owner = rest.split(":", 1)[0] if namespace in ("tenant", "user") else None
        return cls(name, namespace, owner)


def _user_id(principal) -> str | None:
    user = getattr(principal, "user", None)
    return user.id if user is not None else None


def can_subscribe(principal, channel: Channel) -> bool:
    if not principal.is_authenticated:
        return False
    if principal.is_platform_admin:
        return True
    if channel.namespace == "tenant":
        return principal.tenant_id == channel.owner
    if channel.namespace == "user":
        return _user_id(principal) == channel.owner
    return False


def can_publish(principal, channel: Channel) -> bool:
    if not principal.is_authenticated:
        return False
    if principal.is_platform_admin:
        return True
    if channel.namespace == "tenant":
        return principal.tenant_id == channel.owner and principal.has_role("member")
    return False
