"""Give each stored host to the tenant that routed it first, and drop the old route claims (idempotent)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from balancer.migrate_hosts import migrate_host_claims


class Command(BaseCommand):
    help = ("Migrate per host + path prefix route claims to host claims: each host goes to the tenant whose route "
            "claimed it first; other tenants' routes on it become pending. Safe to run any number of times.")

    def handle(self, *args, **options):
        report = migrate_host_claims()
        for host, tenant_id in sorted(report.hosts_assigned.items()):
            self.stdout.write(f"  {host} -> tenant {tenant_id}")
        self.stdout.write(self.style.SUCCESS(
            f"host claims: {len(report.hosts_assigned)} host(s) assigned, {len(report.fragments_rebuilt)} "
            f"fragment(s) rebuilt, {report.old_claims_removed} old route claim(s) removed"))
