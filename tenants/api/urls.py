from django.urls import path

from tenants.api import auth_views, invitation_views, views

urlpatterns = [
    path("", auth_views.ApiRootView.as_view(), name="api-root"),
    path("auth/login", auth_views.LoginView.as_view(), name="auth-login"),
    path("auth/register", auth_views.RegisterView.as_view(), name="auth-register"),
    path("auth/refresh", auth_views.RefreshView.as_view(), name="auth-refresh"),
    path("auth/logout", auth_views.LogoutView.as_view(), name="auth-logout"),
    path("auth/api-keys", auth_views.ApiKeyListView.as_view(), name="api-keys"),
    path("auth/api-keys/<str:key_id>", auth_views.ApiKeyDetailView.as_view(), name="api-key-detail"),
    path("profile", auth_views.ProfileView.as_view(), name="profile"),
    path("profile/invitations", invitation_views.ProfileInvitationListView.as_view(), name="profile-invitations"),
    path("profile/invitations/<str:invitation_id>", invitation_views.ProfileInvitationDetailView.as_view(),
         name="profile-invitation"),
    path("invitations/<str:token>/accept", invitation_views.InvitationAcceptView.as_view(), name="invitation-accept"),
    path("tenants", views.TenantListView.as_view(), name="tenants"),
    path("tenants/<str:tenant_id>", views.TenantDetailView.as_view(), name="tenant-detail"),
    path("tenants/<str:tenant_id>/users", views.MemberListView.as_view(), name="tenant-users"),
    path("tenants/<str:tenant_id>/users/<str:user_id>", views.MemberDetailView.as_view(), name="tenant-user"),
    path("tenants/<str:tenant_id>/invitations", invitation_views.InvitationListView.as_view(),
         name="tenant-invitations"),
    path("tenants/<str:tenant_id>/invitations/<str:invitation_id>", invitation_views.InvitationDetailView.as_view(),
         name="tenant-invitation"),
    path("tenants/<str:tenant_id>/metrics", views.TenantMetricsView.as_view(), name="tenant-metrics"),
    path("tenants/<str:tenant_id>/logs", views.TenantLogsView.as_view(), name="tenant-logs"),
    path("tenants/<str:tenant_id>/usage", views.TenantUsageView.as_view(), name="tenant-usage"),
    path("tenants/<str:tenant_id>/alerts", views.TenantAlertsView.as_view(), name="tenant-alerts"),
    path("tenants/<str:tenant_id>/status", views.TenantStatusView.as_view(), name="tenant-status"),
    path("tenants/<str:tenant_id>/billing", views.TenantBillingView.as_view(), name="tenant-billing"),
    path("tenants/<str:tenant_id>/config", views.TenantConfigView.as_view(), name="tenant-config"),
    path("audit", views.AuditView.as_view(), name="audit"),
]
