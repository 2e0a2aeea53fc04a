from django.conf import settings
from django.db import models


class Segment(models.Model):
    """A named group of customers defined by rules.

    ``rules`` is a tree: ``{"op": "and"|"or", "rules": [<rule or group>, ...]}`` where a rule
    is ``{"field": ..., "operator": ..., "value": ...}``; see ``marketing.segments``.
    """

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    rules = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
