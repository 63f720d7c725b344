"""Load balancer core and configuration endpoints (API.md: "Load balancer core", "Configuration and system")."""

from django.urls import path

from balancer.api import config_views, domain_views, views

urlpatterns = [
    path("pools", views.PoolListView.as_view(), name="pools"),
    path("pools/<str:name>", views.PoolDetailView.as_view(), name="pool-detail"),
    path("backends", views.BackendListView.as_view(), name="backends"),
    path("backends/<str:backend_id>", views.BackendDetailView.as_view(), name="backend-detail"),
    path("routes", views.RouteListView.as_view(), name="routes"),
    path("routes/<str:route_id>", views.RouteDetailView.as_view(), name="route-detail"),
    path("bulk", views.BulkView.as_view(), name="bulk"),
    path("domains", domain_views.DomainListView.as_view(), name="domains"),
    path("domains/<str:host>", domain_views.DomainDetailView.as_view(), name="domain-detail"),
    path("domains/<str:host>/verify", domain_views.DomainVerifyView.as_view(), name="domain-verify"),
    path("config", config_views.ConfigView.as_view(), name="config"),
    path("config/validate", config_views.ConfigValidateView.as_view(), name="config-validate"),
    path("config/export", config_views.ConfigExportView.as_view(), name="config-export"),
    path("config/import", config_views.ConfigImportView.as_view(), name="config-import"),
    path("config/versions", config_views.ConfigVersionsView.as_view(), name="config-versions"),
    path("config/versions/<int:version>", config_views.ConfigVersionDetailView.as_view(), name="config-version"),
    path("config/versions/<int:version>/rollback", config_views.ConfigRollbackView.as_view(), name="config-rollback"),
    path("reload", config_views.ReloadView.as_view(), name="reload"),
    path("backup/create", config_views.BackupCreateView.as_view(), name="backup-create"),
    path("backup/restore", config_views.BackupRestoreView.as_view(), name="backup-restore"),
    path("status", config_views.StatusView.as_view(), name="status"),
    path("metrics", config_views.MetricsView.as_view(), name="metrics"),
    path("analytics", config_views.AnalyticsView.as_view(), name="analytics"),
]
