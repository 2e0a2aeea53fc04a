"""Plotly figures of a campaign plan: profit by depth, gains and lift, forecast against
actual by decile, Qini curve and uplift by decile. Each takes the JSON the plan stores."""

from typing import Any

import plotly.graph_objects as go
from django.utils.translation import gettext as _

from marketing.templatetags.money import currency, money_text
from marketing.views.charts import GUIDE, PRIMARY, figure_data, guide_line, right_axis
from marketing.views.model_charts import BASELINE, model_chart_layout

SUCCESS = "#2b8a3e"
DANGER = "#c92a2a"


def _depth_axis(fig: go.Figure) -> None:
    fig.update_xaxes(
        title={"text": _("Customers contacted (top % by score)")}, range=[0, 100], ticksuffix="%"
    )


def _marker_line(fig: go.Figure, x: float, text: str, color: str, dash: str = "solid") -> None:
    fig.add_vline(x=x, line={"color": color, "dash": dash, "width": 1.5})
    # Near the right edge the label goes on the line's left so it is not cut off.
    right = x > 80
    fig.add_annotation(
        x=x,
        y=1,
        yref="paper",
        text=text,
        showarrow=False,
        xanchor="right" if right else "left",
        yanchor="top",
        xshift=-4 if right else 4,
        font={"color": color, "size": 11},
        bgcolor="rgba(255,255,255,0.85)",
    )


def profit_curve(result: dict[str, Any]) -> dict:
    """Expected profit by depth for the model's ranking and for random targeting, with the
    best depth, the budget limit and the marketer's chosen depth marked."""
    curve = result["curve"]
    x = [0.0, *curve["depth_pct"]]
    contacts = [0, *curve["contacts"]]
    fig = go.Figure()
    for name, key, color, dash in (
        (_("Random targeting"), "random_profit", GUIDE, "dot"),
        (_("Targeting by score"), "profit", PRIMARY, "solid"),
    ):
        y = [0.0, *curve[key]]
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines",
                name=name,
                line={"color": color, "width": 2, "dash": dash},
                customdata=[[f"{c:,}", money_text(v)] for c, v in zip(contacts, y, strict=True)],
                hovertemplate=_("top %(pct)s (%(customers)s customers): profit %(profit)s")
                % {
                    "pct": "%{x:.0f}%",
                    "customers": "%{customdata[0]}",
                    "profit": "%{customdata[1]}",
                }
                + f"<extra>{name}</extra>",
            )
        )
    best = result["best"]
    fig.add_trace(
        go.Scatter(
            x=[best["depth_pct"]],
            y=[best["profit"]],
            mode="markers",
            name=_("Best depth"),
            marker={"color": SUCCESS, "size": 11, "symbol": "star"},
            hovertemplate=_("best: top %(pct)s (%(customers)s customers), profit %(profit)s")
            % {
                "pct": f"{best['depth_pct']:.1f}%",
                "customers": f"{best['contacts']:,}",
                "profit": money_text(best["profit"]),
            }
            + "<extra></extra>",
        )
    )
    _marker_line(
        fig, best["depth_pct"], _("Best: %(pct)s") % {"pct": f"{best['depth_pct']:.0f}%"}, SUCCESS
    )
    budget = result["budget"]
    if budget["limit"] is not None:
        _marker_line(
            fig,
            budget["max_depth_pct"],
            _("Budget %(limit)s") % {"limit": money_text(budget["limit"])},
            DANGER,
            "dash",
        )
    chosen = result.get("chosen") or {}
    if chosen.get("set_by") == "marketer":
        _marker_line(
            fig,
            chosen["depth_pct"],
            _("Chosen: %(pct)s") % {"pct": f"{chosen['depth_pct']:.0f}%"},
            BASELINE,
            "dot",
        )
    fig.add_hline(y=0, line={"color": "#8a94a6", "width": 1})
    model_chart_layout(fig, height=340)
    _depth_axis(fig)
    fig.update_yaxes(
        title={"text": _("Expected profit")}, tickprefix=currency(), separatethousands=True
    )
    return figure_data(fig)


def gains_and_lift(result: dict[str, Any]) -> dict:
    """Share of the expected conversions reached at each depth, and the lift over random."""
    curve = result["curve"]
    total = curve["expected_conversions"][-1] or 1.0
    x = [0.0, *curve["depth_pct"]]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[0.0, *(c / total for c in curve["expected_conversions"])],
            mode="lines",
            name=_("Conversions reached"),
            line={"color": PRIMARY, "width": 2},
            hovertemplate=_("top %(pct)s reaches %(share)s of expected conversions")
            % {"pct": "%{x:.0f}%", "share": "%{y:.0%}"}
            + "<extra></extra>",
        )
    )
    fig.add_trace(guide_line([0, 100], [0, 1], _("Random order")))
    fig.add_trace(
        go.Scatter(
            x=curve["depth_pct"],
            y=curve["lift"],
            mode="lines",
            name=_("Lift (right axis)"),
            yaxis="y2",
            line={"color": BASELINE, "width": 2},
            hovertemplate=_("top %(pct)s: %(lift)s× the random rate")
            % {"pct": "%{x:.0f}%", "lift": "%{y:.2f}"}
            + "<extra></extra>",
        )
    )
    model_chart_layout(fig, height=300)
    _depth_axis(fig)
    fig.update_layout(
        yaxis={
            "title": {"text": _("Expected conversions reached")},
            "tickformat": ".0%",
            "range": [0, 1.02],
        },
        yaxis2=right_axis(_("Lift"), ticksuffix="×", tickformat=".1f", rangemode="tozero"),
    )
    return figure_data(fig)


def forecast_vs_actual(actual: dict[str, Any]) -> dict:
    """Forecast and actual conversion rate per decile of the targeted customers."""
    deciles = actual["deciles"]
    labels = [f"{d['decile']}" for d in deciles]
    fig = go.Figure()
    for name, key, color in (
        (_("Forecast"), "forecast_rate", GUIDE),
        (_("Actual"), "actual_rate", PRIMARY),
    ):
        fig.add_trace(
            go.Bar(
                x=labels,
                y=[d[key] for d in deciles],
                name=name,
                marker={"color": color},
                customdata=[d["customers"] for d in deciles],
                hovertemplate=_("decile %(decile)s (%(customers)s customers): %(rate)s")
                % {"decile": "%{x}", "customers": "%{customdata:,}", "rate": "%{y:.1%}"}
                + f"<extra>{name}</extra>",
            )
        )
    model_chart_layout(fig, height=280)
    fig.update_layout(barmode="group", bargap=0.25)
    fig.update_xaxes(title={"text": _("Decile of the targeted customers (1 = highest forecast)")})
    fig.update_yaxes(title={"text": _("Conversion rate")}, tickformat=".0%", rangemode="tozero")
    return figure_data(fig)


def qini(evaluation: dict[str, Any]) -> dict:
    """Incremental conversions when contacting the top x % by predicted uplift."""
    x = [0.0, *evaluation["depth_pct"]]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[0.0, *evaluation["qini"]],
            mode="lines",
            name=_("By predicted uplift"),
            line={"color": PRIMARY, "width": 2},
            hovertemplate=_("top %(pct)s: %(conversions)s incremental conversions")
            % {"pct": "%{x:.0f}%", "conversions": "%{y:.1f}"}
            + "<extra></extra>",
        )
    )
    fig.add_trace(guide_line(x, [0.0, *evaluation["qini_random"]], _("Random")))
    model_chart_layout(fig, height=280)
    _depth_axis(fig)
    fig.update_xaxes(title={"text": _("Customers contacted (top % by predicted uplift)")})
    fig.update_yaxes(title={"text": _("Incremental conversions (Qini)")})
    return figure_data(fig)


def uplift_by_decile(evaluation: dict[str, Any]) -> dict:
    """Predicted and observed uplift (treated rate − control rate) per decile."""
    deciles = evaluation["deciles"]
    labels = [str(d["decile"]) for d in deciles]
    predicted, observed = _("Predicted"), _("Observed")
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=labels,
            y=[d["predicted_uplift"] for d in deciles],
            name=predicted,
            marker={"color": GUIDE},
            hovertemplate=_("decile %(decile)s: %(uplift)s")
            % {"decile": "%{x}", "uplift": "%{y:+.1%}"}
            + f"<extra>{predicted}</extra>",
        )
    )
    fig.add_trace(
        go.Bar(
            x=labels,
            y=[d["observed_uplift"] for d in deciles],
            name=observed,
            marker={"color": PRIMARY},
            customdata=[[d["treated"], d["control"]] for d in deciles],
            hovertemplate=_(
                "decile %(decile)s: %(uplift)s (%(treated)s treated, %(control)s control)"
            )
            % {
                "decile": "%{x}",
                "uplift": "%{y:+.1%}",
                "treated": "%{customdata[0]}",
                "control": "%{customdata[1]}",
            }
            + f"<extra>{observed}</extra>",
        )
    )
    model_chart_layout(fig, height=280)
    fig.update_layout(barmode="group", bargap=0.25)
    fig.update_xaxes(title={"text": _("Decile of predicted uplift (1 = highest)")})
    fig.update_yaxes(title={"text": _("Uplift in conversion rate")}, tickformat="+.0%")
    return figure_data(fig)
