from django.apps import AppConfig


class BalancerConfig(AppConfig):
    name = "balancer"

    def ready(self) -> None:
        # The balancer's part of a tenant's suspension and deletion (tenants/lifecycle.py).
        from balancer import lifecycle

        lifecycle.register()
