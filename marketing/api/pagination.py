"""Pagination of the API lists.

Lists that grow with the customer base (customers, interactions, consent records) page by
cursor (``marketing.keyset``): ``next`` and ``previous`` links, no count, and a deep page
costs what the first does. Lists people make one row at a time (segments, jobs, runs,
audiences) keep page numbers and their count.
"""

from typing import Any

from django.db.models import QuerySet
from rest_framework.filters import OrderingFilter
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from marketing.keyset import KeysetOrdering, KeysetPage, keyset_page

PAGE_SIZE = 50
# ``?page_size=`` may ask for up to this many rows a page (more is cut to it).
MAX_PAGE_SIZE = 500


class NumberedPagination(PageNumberPagination):
    """Numbered pages of ``PAGE_SIZE`` rows, or ``?page_size=`` up to ``MAX_PAGE_SIZE``."""

    page_size = PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE


class KeysetCursorPagination(CursorPagination):
    """Cursor pages in the order ``?ordering=`` names (one of the view's ``ordering_fields``,
    ``-`` for descending), ties broken by id; by default the view's ``ordering`` or ``-id``.

    Unlike DRF's own cursor, which keeps an offset among rows that share a value (a whole
    import shares its ``created_at``), the cursor holds the last row's (value, id), so no page
    reads the rows before it. Each offered ordering needs an index on (field, id).
    """

    ordering = "-id"
    page_size = PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    invalid_cursor_message = "This page link is not valid."
    keyset: KeysetOrdering
    keyset_page: KeysetPage[Any]

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any]:
        if not isinstance(queryset, QuerySet):
            raise TypeError("Keyset pages are read from a queryset")
        self.request = request
        self.base_url = request.build_absolute_uri()
        self.keyset = KeysetOrdering.of(queryset.model, self._ordering_key(request, queryset, view))
        token = request.query_params.get(self.cursor_query_param) or None
        size = self.get_page_size(request) or PAGE_SIZE
        self.keyset_page = keyset_page(queryset, self.keyset, size=size, cursor=token)
        return self.keyset_page.rows

    def get_next_link(self) -> str | None:
        return self._link(self.keyset_page.next_cursor)

    def get_previous_link(self) -> str | None:
        return self._link(self.keyset_page.previous_cursor)

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {"next": self.get_next_link(), "previous": self.get_previous_link(), "results": data}
        )

    def _ordering_key(self, request: Request, queryset: QuerySet[Any], view: Any) -> str:
        """The first valid term of ``?ordering=`` (OrderingFilter drops unknown fields), else
        the view's own ordering, else this class's."""
        requested = OrderingFilter().get_ordering(request, queryset, view) or []
        default = getattr(view, "ordering", None) or self.ordering
        chosen = list(requested)[:1] or ([default] if isinstance(default, str) else default[:1])
        return str(chosen[0])

    def _link(self, cursor: str | None) -> str | None:
        if cursor is None or self.base_url is None:
            return None
        return replace_query_param(self.base_url, self.cursor_query_param, cursor)
