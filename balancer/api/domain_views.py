"""/api/domains: claim a host, prove control of it (DNS TXT or HTTP token), release it (API.md)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from balancer import domains
from balancer.api.base import BalancerView
from balancer.models import DOMAIN_STATUSES
from veloflux_site.api.pagination import paginate_list
from veloflux_site.api.schema import answers, error, list_endpoint


class DomainClaimSerializer(serializers.Serializer):
    host = serializers.CharField(help_text="example.com, api.example.com or *.example.com (proved on example.com)")


class DomainVerificationSerializer(serializers.Serializer):
    dns_txt_name = serializers.CharField(help_text="publish a TXT record here ...")
    dns_txt_value = serializers.CharField(help_text="... holding this value")
    http_path = serializers.CharField(help_text="or serve this path on http://<host>/ ...")
    http_body = serializers.CharField(help_text="... answering 200 with this body")


class DomainSerializer(serializers.Serializer):
    host = serializers.CharField()
    status = serializers.ChoiceField(choices=DOMAIN_STATUSES)
    wildcard = serializers.BooleanField()
    method = serializers.CharField(allow_null=True, help_text="dns_txt | http | platform | migrated")
    verified_at = serializers.CharField(allow_null=True)
    expires_at = serializers.CharField(allow_null=True, help_text="when a pending claim lapses")
    created_at = serializers.CharField(allow_null=True)
    verification = DomainVerificationSerializer(allow_null=True)
    reason = serializers.CharField(allow_null=True, help_text="why a pending claim is not verified yet")
    checks = serializers.DictField(child=serializers.CharField(), required=False,
                                   help_text="on verify: what each check found")


DOMAIN_403 = error("role too low, or no tenant selected (X-Tenant-ID)")
DOMAIN_404 = error("no such domain claim in this tenant")
DOMAIN_409 = error("the host is taken, reserved or the claim expired")


class DomainListView(BalancerView):
    serializer_class = DomainClaimSerializer

    @list_endpoint("domains_list", "DomainPage", DomainSerializer, errors={403: DOMAIN_403})
    def get(self, request):
        return Response(paginate_list(request, domains.list_domains(self.tenant_id())))

    @extend_schema(operation_id="domains_claim", request=DomainClaimSerializer,
                   responses={201: OpenApiResponse(DomainSerializer, description="claimed: prove it next"),
                              200: OpenApiResponse(DomainSerializer, description="already claimed by this tenant"),
                              403: DOMAIN_403, 409: DOMAIN_409})
    def post(self, request):
        payload, created = domains.claim_domain(self.tenant_id(), self.actor(), self.body())
        return Response(payload, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class DomainDetailView(BalancerView):
    serializer_class = None

    @answers(200, DomainSerializer, operation_id="domains_retrieve", errors={403: DOMAIN_403, 404: DOMAIN_404})
    def get(self, request, host: str):
        return Response(domains.get_domain(self.tenant_id(), host.lower()))

    @answers(204, OpenApiResponse(description="released"), operation_id="domains_release",
             errors={403: DOMAIN_403, 404: DOMAIN_404, 409: DOMAIN_409})
    def delete(self, request, host: str):
        domains.release_domain(self.tenant_id(), self.actor(), host.lower(),
                               by_platform_admin=bool(self.principal.is_platform_admin))
        return Response(status=status.HTTP_204_NO_CONTENT)


class DomainVerifyView(BalancerView):
    serializer_class = None

    @extend_schema(operation_id="domains_verify", request=None,
                   responses={200: OpenApiResponse(DomainSerializer, description="status verified, or pending with "
                                                   "what each check found"),
                              403: DOMAIN_403, 404: DOMAIN_404, 409: DOMAIN_409})
    def post(self, request, host: str):
        return Response(domains.verify_domain(self.tenant_id(), self.actor(), host.lower()))
