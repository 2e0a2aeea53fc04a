"""Plotly figures of explanations: field importance of BERT beside the baseline, and the
waterfall from a typical customer's log-odds to one customer's."""

from typing import Any

import plotly.graph_objects as go
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from marketing.views.charts import figure_data
from marketing.views.model_charts import COLORS, MODEL_NAMES, hover, model_chart_layout

# Fields drawn one by one in a waterfall; the rest are summed into one bar.
WATERFALL_FIELDS = 10
UP, DOWN, TOTAL = "#2f9e44", "#e03131", "#5c677d"


def field_importance(result: dict[str, Any]) -> dict:
    """Mean |SHAP| per field, two bars per field (BERT, baseline), most important on top."""
    bert = {f["field"]: f for f in result["bert"]["fields"]}
    baseline = {f["field"]: f for f in result["baseline"]["fields"]}
    order = list(bert) + [f for f in baseline if f not in bert]
    labels = [(bert.get(f) or baseline[f])["label"] for f in order]
    fig = go.Figure()
    for key, fields in (("baseline", baseline), ("bert", bert)):
        values = [fields[f]["mean_abs"] if f in fields else 0.0 for f in order]
        fig.add_trace(
            go.Bar(
                x=values[::-1],
                y=labels[::-1],
                orientation="h",
                name=str(MODEL_NAMES[key]),
                marker={"color": COLORS[key], "cornerradius": 3},
                hovertemplate=hover(
                    _("%(model)s · %(field)s: mean |SHAP| %(value)s log-odds"),
                    model=str(MODEL_NAMES[key]),
                    field="%{y}",
                    value="%{x:.3f}",
                ),
            )
        )
    model_chart_layout(fig, height=max(220, 56 * len(order) + 60))
    fig.update_layout(
        barmode="group", bargap=0.25, bargroupgap=0.05, legend={"traceorder": "reversed"}
    )
    fig.update_xaxes(title={"text": _("Mean |contribution| (log-odds)")}, rangemode="tozero")
    return figure_data(fig)


def waterfall(explanation: dict[str, Any], *, color: str | None = None) -> dict:
    """From the typical compared customer's log-odds, field by field (largest first), to this
    customer's log-odds; bars name the field and the customer's value."""
    shown = explanation["contributions"][:WATERFALL_FIELDS]
    rest = explanation["contributions"][WATERFALL_FIELDS:]
    labels = [_("Typical customer")]
    values = [explanation["base_value"]]
    measures = ["absolute"]
    for c in shown:
        labels.append(f"{c['label']} = {value_text(c['value'])}")
        values.append(c["contribution"])
        measures.append("relative")
    if rest:
        labels.append(
            ngettext("%(count)s other field", "%(count)s other fields", len(rest))
            % {"count": len(rest)}
        )
        values.append(sum(c["contribution"] for c in rest))
        measures.append("relative")
    labels.append(_("This customer"))
    values.append(explanation["logit"])
    measures.append("total")
    texts = [f"{explanation['base_value']:.2f}"]
    texts += [f"{v:+.2f}" for v in values[1:-1]]
    texts.append(f"{explanation['logit']:.2f} ({explanation['probability']:.1%})")
    fig = go.Figure(
        go.Waterfall(
            orientation="h",
            y=labels,
            x=values,
            measure=measures,
            text=texts,
            textposition="outside",
            cliponaxis=False,
            increasing={"marker": {"color": UP}},
            decreasing={"marker": {"color": DOWN}},
            totals={"marker": {"color": color or TOTAL}},
            connector={"line": {"color": "#c5cddd", "width": 1}},
            hovertemplate="%{y}: %{text}<extra></extra>",
        )
    )
    model_chart_layout(fig, height=max(240, 34 * len(labels) + 60), legend=False)
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(
        title={"text": _("Log-odds of the response")},
        zeroline=True,
        zerolinecolor="#c5cddd",
        range=_padded_range(values),
    )
    return figure_data(fig)


def _padded_range(values: list[float]) -> list[float]:
    """The x range of a waterfall (its bars start at 0), with room for the bar texts."""
    ends = [0.0, values[0]]
    for step in values[1:-1]:
        ends.append(ends[-1] + step)
    low, high = min(ends), max(ends)
    pad = 0.3 * max(high - low, 0.5)
    return [low - pad, high + pad]


def value_text(value: Any) -> str:
    if value is None:
        return _("missing")
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
