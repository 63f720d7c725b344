"""/api/domains: claim a host, prove control of it (DNS TXT or HTTP token), release it (API.md)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from balancer import domains
from balancer.api.base import BalancerView
from balancer.models import DOMAIN_STATUSES
from veloflux_site.api.pagination import paginate_list


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


class DomainPageSerializer(serializers.Serializer):
    items = DomainSerializer(many=True)
    total_count = serializers.IntegerField()
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()
    has_more = serializers.BooleanField()


ErrorSerializer = inline_serializer("DomainError", {"error": inline_serializer("DomainErrorBody", {
    "code": serializers.CharField(), "message": serializers.CharField(),
    "fields": serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False),
})})


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    meaning = {400: "invalid input", 401: "not authenticated", 403: "role too low or no tenant selected",
               404: "no such domain claim in this tenant", 409: "the host is taken, reserved or the claim expired",
               413: "request body too large", 415: "unsupported media type", 503: "the data store is unreachable"}
    return {code: OpenApiResponse(ErrorSerializer, description=meaning[code]) for code in codes}


class DomainListView(BalancerView):
    serializer_class = DomainClaimSerializer

    @extend_schema(operation_id="domains_list", responses={200: DomainPageSerializer, **_errors(400, 401, 403, 503)})
    def get(self, request):
        return Response(paginate_list(request, domains.list_domains(self.tenant_id())))

    @extend_schema(operation_id="domains_claim", request=DomainClaimSerializer,
                   responses={201: OpenApiResponse(DomainSerializer, description="claimed: prove it next"),
                              200: OpenApiResponse(DomainSerializer, description="already claimed by this tenant"),
                              **_errors(400, 401, 403, 409, 413, 415, 503)})
    def post(self, request):
        payload, created = domains.claim_domain(self.tenant_id(), self.actor(), self.body())
        return Response(payload, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class DomainDetailView(BalancerView):
    serializer_class = None

    @extend_schema(operation_id="domains_retrieve", responses={200: DomainSerializer,
                                                                **_errors(401, 403, 404, 503)})
    def get(self, request, host: str):
        return Response(domains.get_domain(self.tenant_id(), host.lower()))

    @extend_schema(operation_id="domains_release", responses={204: OpenApiResponse(description="released"),
                                                               **_errors(401, 403, 404, 409, 503)})
    def delete(self, request, host: str):
        domains.release_domain(self.tenant_id(), self.actor(), host.lower(),
                               by_platform_admin=bool(self.principal.is_platform_admin))
        return Response(status=status.HTTP_204_NO_CONTENT)


class DomainVerifyView(BalancerView):
    serializer_class = None

    @extend_schema(operation_id="domains_verify", request=None,
                   responses={200: OpenApiResponse(DomainSerializer, description="status verified, or pending with "
                                                   "what each check found"),
                              **_errors(401, 403, 404, 409, 503)})
    def post(self, request, host: str):
        return Response(domains.verify_domain(self.tenant_id(), self.actor(), host.lower()))
