"""API for offers."""

from rest_framework import serializers, viewsets

from marketing import filters
from marketing.models import Offer


class OfferSerializer(serializers.ModelSerializer):
    class Meta:
        model = Offer
        fields = [
            "id",
            "external_id",
            "title",
            "category",
            "description",
            "price",
            "unit_cost",
            "active",
            "created_at",
            "updated_at",
        ]


class OfferViewSet(viewsets.ModelViewSet):
    queryset = Offer.objects.all()
    serializer_class = OfferSerializer
    filterset_class = filters.OfferFilter
    search_fields = ["external_id", "title", "category"]
    ordering_fields = ["title", "price", "created_at"]
