from django.urls import path

from cluster.api import views

urlpatterns = [
    path("system/schedules", views.SchedulesView.as_view(), name="system-schedules"),
]
