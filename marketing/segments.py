"""Segment rules: a tree of conditions compiled to one ``Q`` on ``Customer``.

A rules tree is a group ``{"op": "and"|"or", "rules": [<rule or group>, ...]}``; a rule is
``{"field": ..., "operator": ..., "value": ...}``. Fields:

- ``attr:<name>``: a profile attribute from ``Customer.attributes``, typed by ``ProfileField``
  (number, text, boolean, date); ``is_set`` / ``is_not_set`` work on every type.
- ``consent:<purpose>``: ``has_consent`` / ``no_consent``, built only on the consent selector.
- ``interactions:<kind>``: how many impressions, clicks or conversions a customer has
  (``gte``, ``lte``, ``eq``), optionally for one offer (``"offer": <external id>``) and within
  the last ``"within_days"`` days.
- ``identity:country`` (``eq``, ``in``), ``identity:has_email`` and ``identity:has_phone``
  (``is_true``, ``is_false``): these reveal no personal identifier.

Everything is evaluated in the database. Comparisons match only customers whose value is set
and well-typed, read by its JSON type: a JSON number is compared as it is, a number stored as
text (" 42 ", from before imports typed values) is checked by pattern first, and anything
else (a stray "n/a", a yes/no) counts as not set. ``ne`` and ``not_in`` are the exact
complement of ``eq`` and ``in`` (they also match customers without the value), so
``x eq v OR x ne v`` is everyone. An empty root group matches every customer.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    Expression,
    FloatField,
    Func,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Coalesce, Substr
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    In,
    IsNull,
    LessThan,
    LessThanOrEqual,
    Regex,
)
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from marketing.errors import ApplicationError
from marketing.exporters.hashing import digest_keys
from marketing.models import CustomerIdentity, Interaction, Offer, ProfileField
from marketing.models.consent import Purpose
from marketing.selectors.consent import consent_q

MAX_DEPTH = 5
MAX_WITHIN_DAYS = 3660

NUMBER, TEXT, BOOLEAN, DATE, CATEGORY, IDENTIFIER = (
    ProfileField.DataType.NUMBER.value,
    ProfileField.DataType.TEXT.value,
    ProfileField.DataType.BOOLEAN.value,
    ProfileField.DataType.DATE.value,
    ProfileField.DataType.CATEGORY.value,
    ProfileField.DataType.IDENTIFIER.value,
)
CONSENT, COUNT = "consent", "count"
ANY_OPERATORS = ["is_set", "is_not_set"]
OPERATORS: dict[str, list[str]] = {
    NUMBER: ["eq", "ne", "gt", "gte", "lt", "lte", "between", *ANY_OPERATORS],
    TEXT: ["eq", "ne", "in", "not_in", "contains", *ANY_OPERATORS],
    CATEGORY: ["eq", "ne", "in", "not_in", *ANY_OPERATORS],
    BOOLEAN: ["is_true", "is_false", *ANY_OPERATORS],
    DATE: ["before", "after", "between", *ANY_OPERATORS],
    CONSENT: ["has_consent", "no_consent"],
    COUNT: ["gte", "lte", "eq"],
}
COUNTRY_OPERATORS = ["eq", "in"]
FLAG_OPERATORS = ["is_true", "is_false"]
# What the builder's operator menu says (the server passes them to the page, translated).
OPERATOR_LABELS = {
    "eq": pgettext_lazy("segment operator", "is"),
    "ne": pgettext_lazy("segment operator", "is not"),
    "gt": pgettext_lazy("segment operator", "more than"),
    "gte": pgettext_lazy("segment operator", "at least"),
    "lt": pgettext_lazy("segment operator", "less than"),
    "lte": pgettext_lazy("segment operator", "at most"),
    "between": pgettext_lazy("segment operator", "between"),
    "in": pgettext_lazy("segment operator", "is one of"),
    "not_in": pgettext_lazy("segment operator", "is none of"),
    "contains": pgettext_lazy("segment operator", "contains"),
    "is_true": pgettext_lazy("segment operator", "is yes"),
    "is_false": pgettext_lazy("segment operator", "is no"),
    "before": pgettext_lazy("segment operator", "before"),
    "after": pgettext_lazy("segment operator", "after"),
    "is_set": pgettext_lazy("segment operator", "is known"),
    "is_not_set": pgettext_lazy("segment operator", "is unknown"),
    "has_consent": pgettext_lazy("segment operator", "has consent"),
    "no_consent": pgettext_lazy("segment operator", "has no consent"),
}
# A rule in words, one sentence per operator: ``field`` is the field's label, ``value`` the
# value, ``low``/``high`` the ends of a range, ``values`` a list joined by commas.
RULE_SENTENCES = {
    "eq": gettext_lazy("%(field)s is %(value)s"),
    "ne": gettext_lazy("%(field)s is not %(value)s"),
    "gt": gettext_lazy("%(field)s more than %(value)s"),
    "gte": gettext_lazy("%(field)s at least %(value)s"),
    "lt": gettext_lazy("%(field)s less than %(value)s"),
    "lte": gettext_lazy("%(field)s at most %(value)s"),
    "between": gettext_lazy("%(field)s between %(low)s and %(high)s"),
    "in": gettext_lazy("%(field)s is one of %(values)s"),
    "not_in": gettext_lazy("%(field)s is none of %(values)s"),
    "contains": gettext_lazy("%(field)s contains %(value)s"),
    "is_true": gettext_lazy("%(field)s is yes"),
    "is_false": gettext_lazy("%(field)s is no"),
    "before": gettext_lazy("%(field)s before %(value)s"),
    "after": gettext_lazy("%(field)s after %(value)s"),
    "is_set": gettext_lazy("%(field)s is known"),
    "is_not_set": gettext_lazy("%(field)s is unknown"),
    "has_consent": gettext_lazy("%(field)s has consent"),
    "no_consent": gettext_lazy("%(field)s has no consent"),
}
# The builder's field labels of the response counts, by interaction kind.
COUNT_LABELS = {
    "impression": gettext_lazy("Number of impressions"),
    "click": gettext_lazy("Number of clicks"),
    "conversion": gettext_lazy("Number of conversions"),
}
# A number or an ISO date as stored text; anything else in the JSON counts as "not set", so a
# stray value cannot break a cast on PostgreSQL. Only JSON strings are matched against them.
NUMBER_PATTERN = r"^\s*-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\s*$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"


class SegmentRuleError(ApplicationError, ValueError):
    """A rule that cannot be compiled; the message names where it is and why."""

    def __init__(self, path: str, field: str | None, reason: str) -> None:
        self.path, self.field, self.reason = path, field, reason
        where = f"{path} ({field})" if field else path
        super().__init__(_("%(where)s: %(reason)s") % {"where": where, "reason": reason})


@dataclass(frozen=True)
class _Rule:
    path: str
    field: str
    operator: str
    value: Any
    raw: dict[str, Any]

    def error(self, reason: str) -> SegmentRuleError:
        return SegmentRuleError(self.path, self.field, reason)


def compile_rules(rules: dict[str, Any] | None) -> Q:
    """The rules tree as one ``Q`` on ``Customer``; raises ``SegmentRuleError``."""
    if not rules:
        return Q()
    return _Compiler().group(rules, "rules", depth=1, root=True)


def available_fields() -> list[dict[str, Any]]:
    """What the segment builder offers: every field with its type, operators and values."""
    fields: list[dict[str, Any]] = [
        {
            "field": f"attr:{pf.name}",
            "label": pf.label or pf.name,
            "group": "Profile",
            "type": pf.data_type,
            "operators": OPERATORS[pf.data_type],
            "values": list(pf.sample_values) if pf.data_type in (TEXT, CATEGORY) else [],
        }
        # An identifier is unique per customer: no group to pick.
        for pf in ProfileField.objects.exclude(data_type=IDENTIFIER)
    ]
    fields += [
        {
            "field": f"consent:{value}",
            "label": _("Consent: %(purpose)s") % {"purpose": label},
            "group": "Consent",
            "type": CONSENT,
            "operators": OPERATORS[CONSENT],
            "values": [],
        }
        for value, label in Purpose.choices
    ]
    fields += [
        {
            "field": f"interactions:{value}",
            "label": str(COUNT_LABELS.get(value) or f"Number of {label.lower()}s"),
            "group": "Responses",
            "type": COUNT,
            "operators": OPERATORS[COUNT],
            "values": [],
            "options": ["offer", "within_days"],
        }
        for value, label in Interaction.Kind.choices
    ]
    fields += [
        {
            "field": "identity:country",
            "label": _("Country"),
            "group": "Contact",
            "type": TEXT,
            "operators": COUNTRY_OPERATORS,
            "values": [],
        },
        {
            "field": "identity:has_email",
            "label": _("Has an email address"),
            "group": "Contact",
            "type": BOOLEAN,
            "operators": FLAG_OPERATORS,
            "values": [],
        },
        {
            "field": "identity:has_phone",
            "label": _("Has a phone number"),
            "group": "Contact",
            "type": BOOLEAN,
            "operators": FLAG_OPERATORS,
            "values": [],
        },
    ]
    return fields


class _Compiler:
    def __init__(self) -> None:
        self._types: dict[str, str] | None = None

    def attribute_type(self, name: str) -> str | None:
        if self._types is None:
            self._types = dict(ProfileField.objects.values_list("name", "data_type"))
        return self._types.get(name)

    def group(self, node: Any, path: str, *, depth: int, root: bool = False) -> Q:
        if depth > MAX_DEPTH:
            raise SegmentRuleError(
                path, None, _("groups may be nested at most %(depth)s deep") % {"depth": MAX_DEPTH}
            )
        if not isinstance(node, dict) or set(node) - {"op", "rules"}:
            raise SegmentRuleError(path, None, _('a group needs exactly "op" and "rules"'))
        op, children = node.get("op", "and"), node.get("rules")
        if op not in ("and", "or"):
            raise SegmentRuleError(
                path, None, _('"op" must be "and" or "or", not %(op)s') % {"op": repr(op)}
            )
        if not isinstance(children, list):
            raise SegmentRuleError(path, None, _('"rules" must be a list'))
        if not children:
            if root:
                return Q()
            raise SegmentRuleError(path, None, _("this group has no rules"))
        combined = Q()
        for i, child in enumerate(children):
            child_path = f"{path}[{i}]"
            if isinstance(child, dict) and "rules" in child:
                q = self.group(child, f"{child_path}.rules", depth=depth + 1)
            else:
                q = self.rule(child, child_path)
            combined = (combined & q) if op == "and" else (combined | q)
        return combined

    def rule(self, node: Any, path: str) -> Q:
        if not isinstance(node, dict):
            raise SegmentRuleError(
                path, None, _("a rule must be an object with field and operator")
            )
        field, operator = node.get("field"), node.get("operator")
        if not isinstance(field, str) or not field:
            raise SegmentRuleError(path, None, _('the rule has no "field"'))
        if not isinstance(operator, str) or not operator:
            raise SegmentRuleError(path, field, _('the rule has no "operator"'))
        rule = _Rule(path, field, operator, node.get("value"), node)
        source, _colon, name = field.partition(":")
        handler = _SOURCES.get(source)
        if handler is None or not name:
            raise rule.error(_("unknown field"))
        return handler(self, rule, name)

    def attribute(self, rule: _Rule, name: str) -> Q:
        data_type = self.attribute_type(name)
        if data_type is None:
            raise rule.error(
                _("unknown field: no profile attribute called %(name)s") % {"name": repr(name)}
            )
        if data_type == IDENTIFIER:
            raise rule.error(
                _(
                    "%(name)s is an identifier (one value per customer): segments group "
                    "customers by other fields; change its type on the upload's mapping step "
                    "if it is a code"
                )
                % {"name": repr(name)}
            )
        _check_operator(rule, OPERATORS[data_type], data_type)
        raw = KeyTextTransform(name, "attributes")
        if rule.operator in ANY_OPERATORS:
            is_set = Q(IsNull(raw, False)) & ~Q(Exact(Cast(raw, TextField()), ""))
            return is_set if rule.operator == "is_set" else ~is_set
        return _TYPED[data_type](rule, raw)

    def consent(self, rule: _Rule, purpose: str) -> Q:
        if purpose not in Purpose.values:
            raise rule.error(_("unknown consent purpose %(purpose)s") % {"purpose": repr(purpose)})
        _check_operator(rule, OPERATORS[CONSENT], CONSENT)
        q = consent_q(purpose)
        return q if rule.operator == "has_consent" else ~q

    def interactions(self, rule: _Rule, kind: str) -> Q:
        if kind not in Interaction.Kind.values:
            raise rule.error(_("unknown interaction kind %(kind)s") % {"kind": repr(kind)})
        _check_operator(rule, OPERATORS[COUNT], COUNT)
        unknown = set(rule.raw) - {"field", "operator", "value", "offer", "within_days"}
        if unknown:
            raise rule.error(_("unexpected keys %(keys)s") % {"keys": sorted(unknown)})
        n = _whole_number(rule, rule.value, _("the count"), minimum=0)
        events = Interaction.objects.filter(customer=OuterRef("pk"), kind=kind)
        offer_ref = rule.raw.get("offer")
        if offer_ref not in (None, ""):
            offer_id = Offer.objects.filter(external_id=str(offer_ref)).values_list("pk", flat=True)
            if not offer_id:
                raise rule.error(
                    _("no offer with external id %(offer)s") % {"offer": repr(offer_ref)}
                )
            events = events.filter(offer_id=offer_id[0])
        days = rule.raw.get("within_days")
        if days not in (None, ""):
            days = _whole_number(rule, days, "within_days", minimum=1, maximum=MAX_WITHIN_DAYS)
            events = events.filter(occurred_at__gte=timezone.now() - timedelta(days=days))
        counts = events.order_by().values("customer").annotate(n=Count("pk")).values("n")
        count = Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))
        lookup = {"gte": GreaterThanOrEqual, "lte": LessThanOrEqual, "eq": Exact}[rule.operator]
        return Q(lookup(count, n))

    def identity(self, rule: _Rule, name: str) -> Q:
        identities = CustomerIdentity.objects.filter(customer=OuterRef("pk"))
        if name == "country":
            _check_operator(rule, COUNTRY_OPERATORS, "country")
            codes = _text_values(rule) if rule.operator == "in" else [_text_value(rule)]
            return Q(Exists(identities.filter(country__in=[c.strip().upper() for c in codes])))
        if name in ("has_email", "has_phone"):
            _check_operator(rule, FLAG_OPERATORS, "yes/no")
            column = name.removeprefix("has_")
            # Hashed on upload, the identifier is there as digests only.
            stated = ~Q(**{column: ""}) | Q(digests__has_any_keys=digest_keys(column))
            q = Q(Exists(identities.filter(stated)))
            return q if rule.operator == "is_true" else ~q
        raise rule.error(_("unknown field"))


_SOURCES: dict[str, Callable[[_Compiler, _Rule, str], Q]] = {
    "attr": _Compiler.attribute,
    "consent": _Compiler.consent,
    "interactions": _Compiler.interactions,
    "identity": _Compiler.identity,
}


def _check_operator(rule: _Rule, allowed: list[str], type_name: str) -> None:
    if rule.operator not in allowed:
        raise rule.error(
            _("operator %(operator)s is not valid for a %(type)s field (use one of %(allowed)s)")
            % {"operator": repr(rule.operator), "type": type_name, "allowed": ", ".join(allowed)}
        )


class JSONKind(Func):
    """The JSON type of ``attributes[name]`` in PostgreSQL's words ("number", "string",
    "boolean", "null", "object", "array"; NULL where the key is missing), on SQLite too."""

    output_field = CharField()

    def __init__(self, name: str) -> None:
        super().__init__(KeyTransform(name, "attributes"))

    def as_postgresql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, function="jsonb_typeof", **extra)

    def as_sqlite(self, compiler, connection, **extra):
        key = self.get_source_expressions()[0]
        column, params, _ = key.preprocess_lhs(compiler, connection)
        kind = f"JSON_TYPE({column}, %s)"
        # The key quoted, as an object member whatever its name ("2020", "a.b").
        path = "$." + json.dumps(key.key_name)
        sql = (
            f"(CASE {kind} WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' "
            f"WHEN 'text' THEN 'string' WHEN 'true' THEN 'boolean' WHEN 'false' THEN 'boolean' "
            f"ELSE {kind} END)"
        )
        return sql, (*params, path, *params, path)


def _typed(
    raw: KeyTextTransform, *, native: Expression | None, pattern: str, then: Expression
) -> Case:
    """``native`` where the JSON value is a number (None: never), ``then`` where it is a
    string matching ``pattern``, else NULL. The pattern is tried on strings alone, so a
    profile typed at import is compared without reading any value as text first."""
    kind = JSONKind(raw.key_name)
    whens = [When(Q(Exact(kind, "number")), then=native)] if native is not None else []
    whens.append(
        When(Q(Exact(kind, "string")) & Q(Regex(Cast(raw, TextField()), pattern)), then=then)
    )
    return Case(*whens, default=Value(None), output_field=then.output_field)


def _number_rule(rule: _Rule, raw: KeyTextTransform) -> Q:
    as_float = Cast(raw, FloatField())
    number = _typed(raw, native=as_float, pattern=NUMBER_PATTERN, then=as_float)
    if rule.operator == "between":
        low, high = _pair(rule, _number_value)
        return Q(GreaterThanOrEqual(number, low)) & Q(LessThanOrEqual(number, high))
    value = _number_value(rule, rule.value)
    return _compare(rule.operator, number, value)


def _text_rule(rule: _Rule, raw: KeyTextTransform) -> Q:
    text = Cast(raw, TextField())
    if rule.operator in ("in", "not_in"):
        q = Q(In(text, _text_values(rule)))
        return q if rule.operator == "in" else Q(IsNull(raw, True)) | ~q
    value = _text_value(rule)
    if rule.operator == "contains":
        return Q(IContains(text, value))
    return _compare(rule.operator, text, value)


def _boolean_rule(rule: _Rule, raw: KeyTextTransform) -> Q:
    # KeyTextTransform reads a JSON boolean as 'true'/'false' on both SQLite and PostgreSQL.
    return Q(Exact(Cast(raw, TextField()), "true" if rule.operator == "is_true" else "false"))


def _date_rule(rule: _Rule, raw: KeyTextTransform) -> Q:
    # ISO dates compare correctly as text; the time part of a datetime is ignored.
    day = _typed(raw, native=None, pattern=DATE_PATTERN, then=Substr(Cast(raw, TextField()), 1, 10))
    if rule.operator == "between":
        start, end = _pair(rule, _date_value)
        return Q(GreaterThanOrEqual(day, start)) & Q(LessThanOrEqual(day, end))
    value = _date_value(rule, rule.value)
    return Q(LessThan(day, value)) if rule.operator == "before" else Q(GreaterThan(day, value))


_TYPED: dict[str, Callable[[_Rule, KeyTextTransform], Q]] = {
    NUMBER: _number_rule,
    TEXT: _text_rule,
    CATEGORY: _text_rule,
    BOOLEAN: _boolean_rule,
    DATE: _date_rule,
}


def _compare(operator: str, lhs: Expression, value: Any) -> Q:
    if operator == "ne":
        # The complement of eq, so customers without a (valid) value are included.
        return Q(IsNull(lhs, True)) | ~Q(Exact(lhs, value))
    lookup = {
        "eq": Exact,
        "gt": GreaterThan,
        "gte": GreaterThanOrEqual,
        "lt": LessThan,
        "lte": LessThanOrEqual,
    }[operator]
    return Q(lookup(lhs, value))


def _number_value(rule: _Rule, value: Any) -> float:
    if isinstance(value, bool) or value is None or value == "":
        raise rule.error(_("the value must be a number, not %(value)s") % {"value": repr(value)})
    try:
        return float(value)
    except (TypeError, ValueError):
        raise rule.error(
            _("the value must be a number, not %(value)s") % {"value": repr(value)}
        ) from None


def _date_value(rule: _Rule, value: Any) -> str:
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise rule.error(
            _("the value must be a date as YYYY-MM-DD, not %(value)s") % {"value": repr(value)}
        ) from None


def _text_value(rule: _Rule) -> str:
    value = rule.value
    if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
        raise rule.error(
            _("the value must be a non-empty text, not %(value)s") % {"value": repr(value)}
        )
    return str(value)


def _text_values(rule: _Rule) -> list[str]:
    values = rule.value
    if not isinstance(values, list) or not values:
        raise rule.error(_("the value must be a non-empty list"))
    if any(isinstance(v, bool) or not isinstance(v, str | int | float) for v in values):
        raise rule.error(_("every value in the list must be a text"))
    return [str(v) for v in values]


def _pair(rule: _Rule, convert: Callable[[_Rule, Any], Any]) -> tuple[Any, Any]:
    if not isinstance(rule.value, list) or len(rule.value) != 2:
        raise rule.error(_("between needs a list of two values [from, to]"))
    low, high = convert(rule, rule.value[0]), convert(rule, rule.value[1])
    if low > high:
        raise rule.error(_("between needs the smaller value first"))
    return low, high


def _whole_number(
    rule: _Rule, value: Any, what: str, *, minimum: int, maximum: int | None = None
) -> int:
    if isinstance(value, bool):
        value = None
    try:
        number = int(value)
        if number != float(value):
            raise ValueError
    except (TypeError, ValueError):
        raise rule.error(
            _("%(what)s must be a whole number, not %(value)s")
            % {"what": what, "value": repr(value)}
        ) from None
    if maximum is not None and not minimum <= number <= maximum:
        raise rule.error(
            _("%(what)s must be between %(minimum)s and %(maximum)s, not %(number)s")
            % {"what": what, "minimum": minimum, "maximum": maximum, "number": number}
        )
    if number < minimum:
        raise rule.error(
            _("%(what)s must be >= %(minimum)s, not %(number)s")
            % {"what": what, "minimum": minimum, "number": number}
        )
    return number
