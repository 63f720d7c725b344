"""Load balancer core and configuration endpoints (API.md: "Load balancer core", "Configuration and system")."""

from django.urls import path

from balancer.api import views

urlpatterns = [
    path("pools", views.PoolListView.as_view(), name="pools"),
    path("pools/<str:name>", views.PoolDetailView.as_view(), name="pool-detail"),
    path("backends", views.BackendListView.as_view(), name="backends"),
    path("backends/<str:backend_id>", views.BackendDetailView.as_view(), name="backend-detail"),
    path("routes", views.RouteListView.as_view(), name="routes"),
    path("routes/<str:route_id>", views.RouteDetailView.as_view(), name="route-detail"),
    path("bulk", views.BulkView.as_view(), name="bulk"),
    path("config", views.ConfigView.as_view(), name="config"),
    path("config/validate", views.ConfigValidateView.as_view(), name="config-validate"),
    path("config/export", views.ConfigExportView.as_view(), name="config-export"),
    path("config/import", views.ConfigImportView.as_view(), name="config-import"),
    path("config/versions", views.ConfigVersionsView.as_view(), name="config-versions"),
    path("config/versions/<int:version>", views.ConfigVersionDetailView.as_view(), name="config-version"),
    path("config/versions/<int:version>/rollback", views.ConfigRollbackView.as_view(), name="config-rollback"),
    path("reload", views.ReloadView.as_view(), name="reload"),
    path("backup/create", views.BackupCreateView.as_view(), name="backup-create"),
    path("backup/restore", views.BackupRestoreView.as_view(), name="backup-restore"),
    path("status", views.StatusView.as_view(), name="status"),
    path("metrics", views.MetricsView.as_view(), name="metrics"),
    path("analytics", views.AnalyticsView.as_view(), name="analytics"),
]
