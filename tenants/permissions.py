"""RBAC: viewer reads, member changes balancer objects, admin manages users,
owner manages the tenant and billing; platform admins may do anything."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission


class IsAuthenticatedPrincipal(BasePermission):
    message = "Authentication credentials were not provided."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated)


class IsPlatformAdmin(BasePermission):
    message = "Only platform administrators may do this."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_platform_admin)


def role_required(read: str = "viewer", write: str = "member") -> type[BasePermission]:
    """A permission class: ``read`` role for safe methods, ``write`` role for the rest.

    A caller with no tenant to act in (a platform admin without X-Tenant-ID)
    is refused with a message saying so.
    """

    class RoleRequired(BasePermission):
        # Read by tests/test_isolation_matrix.py: the declaration it checks every endpoint against.
        read_role, write_role, needs_tenant = read, write, True

        def has_permission(self, request, view) -> bool:
            principal = request.user
            if not (principal and principal.is_authenticated):
                return False
            if principal.tenant_id is None:
                self.message = "No tenant selected: send X-Tenant-ID (platform admins) or log in to a tenant."
                return False
            needed = read if request.method in SAFE_METHODS else write
            self.message = f"This needs the {needed} role or higher in the tenant."
            return principal.has_role(needed)

    RoleRequired.__name__ = f"RoleRequired_{read}_{write}"
    return RoleRequired


ViewerReadsMemberWrites = role_required("viewer", "member")
ViewerReadsAdminWrites = role_required("viewer", "admin")
AdminOnly = role_required("admin", "admin")
ViewerReadsOwnerWrites = role_required("viewer", "owner")
