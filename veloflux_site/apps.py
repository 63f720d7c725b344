from django.apps import AppConfig


class VelofluxSiteConfig(AppConfig):
    name = "veloflux_site"
    verbose_name = "VeloFlux platform"
