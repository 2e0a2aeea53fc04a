"""Plotly figures of recommendation runs (accuracy vs diversity, exposure per offer) and of a
scoring run's audience diversity (share of each group in the top vs in the base)."""

from typing import Any

import plotly.graph_objects as go
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from marketing.views.charts import MUTED, PRIMARY, figure_data
from marketing.views.model_charts import BASELINE, model_chart_layout

ACCURACY_LABELS = {"ndcg": "NDCG@{k}", "mean_score": gettext_lazy("Mean score of listed offers")}


def accuracy_measure(result: dict[str, Any]) -> str:
    """ "ndcg" when the run had clicks to measure against, else "mean_score"."""
    return "mean_score" if result.get("accuracy_basis") == "none" else "ndcg"


def accuracy_vs_diversity(result: dict[str, Any]) -> dict | None:
    """NDCG@k (or the mean listed score without clicks) against intra-list diversity, one
    point per diversity weight, the run's own weight marked."""
    points = [p for p in result.get("curve") or [] if p.get("intra_list_diversity") is not None]
    if not points:
        return None
    measure = accuracy_measure(result)
    label = str(ACCURACY_LABELS[measure]).format(k=result.get("k"))
    chosen = result.get("diversity")
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[p["intra_list_diversity"] for p in points],
            y=[p[measure] for p in points],
            mode="lines+markers+text",
            name=_("Diversity weight λ"),
            text=[f"λ {p['mmr_lambda']:g}" for p in points],
            textposition="top center",
            textfont={"size": 10, "color": "#6b7489"},
            line={"color": PRIMARY, "width": 2},
            marker={"size": 7, "color": PRIMARY},
            hovertemplate=_("%(lambda)s: diversity %(diversity)s, %(measure)s %(accuracy)s")
            % {
                "lambda": "%{text}",
                "diversity": "%{x:.3f}",
                "measure": label,
                "accuracy": "%{y:.3f}",
            }
            + "<extra></extra>",
        )
    )
    mark = [p for p in points if p["mmr_lambda"] == chosen]
    if mark:
        fig.add_trace(
            go.Scatter(
                x=[mark[0]["intra_list_diversity"]],
                y=[mark[0][measure]],
                mode="markers",
                name=_("Chosen λ %(lambda)s") % {"lambda": f"{chosen:g}"},
                marker={
                    "size": 15,
                    "color": BASELINE,
                    "symbol": "star",
                    "line": {"color": "#ffffff", "width": 1},
                },
                hovertemplate=_(
                    "chosen λ %(lambda)s: diversity %(diversity)s, %(measure)s %(accuracy)s"
                )
                % {
                    "lambda": f"{chosen:g}",
                    "diversity": "%{x:.3f}",
                    "measure": label,
                    "accuracy": "%{y:.3f}",
                }
                + "<extra></extra>",
            )
        )
    model_chart_layout(fig, height=320)
    fig.update_xaxes(title={"text": _("Intra-list diversity (higher = more varied lists)")})
    fig.update_yaxes(title={"text": label}, tickformat=".3f")
    return figure_data(fig)


def exposure_per_offer(result: dict[str, Any]) -> dict | None:
    """Customers each offer is recommended to, most exposed first."""
    rows = result.get("exposure") or []
    if not rows:
        return None
    cap = result.get("offer_cap")
    fig = go.Figure(
        go.Bar(
            x=[r["title"] for r in rows],
            y=[r["customers"] for r in rows],
            marker={
                "color": [PRIMARY if r["customers"] else MUTED for r in rows],
                "cornerradius": 4,
            },
            customdata=[r["category"] or _("no category") for r in rows],
            hovertemplate=_("%(offer)s (%(category)s): %(customers)s customers")
            % {"offer": "%{x}", "category": "%{customdata}", "customers": "%{y:,}"}
            + "<extra></extra>",
        )
    )
    if cap:
        fig.add_hline(
            y=cap,
            line={"color": BASELINE, "dash": "dash", "width": 1},
            annotation_text=_("cap %(cap)s") % {"cap": f"{cap:,}"},
            annotation_position="top right",
        )
    model_chart_layout(fig, height=300, legend=False)
    fig.update_xaxes(tickangle=-30)
    fig.update_yaxes(title={"text": _("Customers")}, rangemode="tozero")
    return figure_data(fig)


def audience_shares(spread: dict[str, Any], top_label: str) -> dict | None:
    """Share of each group in the base beside its share in the top (grouped bars)."""
    groups = spread["groups"]
    if not groups:
        return None
    labels = [g["group"] for g in groups]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=labels,
            y=[g["base_share"] for g in groups],
            name=_("Whole scored base"),
            marker={"color": MUTED, "cornerradius": 3},
            hovertemplate=_("%(group)s: %(share)s of the base")
            % {"group": "%{x}", "share": "%{y:.1%}"}
            + "<extra></extra>",
        )
    )
    flagged = [g["flag"] in ("left out", "under-represented") for g in groups]
    fig.add_trace(
        go.Bar(
            x=labels,
            y=[g["audience_share"] for g in groups],
            name=top_label.capitalize(),
            marker={"color": [BASELINE if f else PRIMARY for f in flagged], "cornerradius": 3},
            showlegend=False,
            hovertemplate=_("%(group)s: %(share)s of the %(top)s")
            % {"group": "%{x}", "share": "%{y:.1%}", "top": top_label}
            + "<extra></extra>",
        )
    )
    # Legend entries for the two colours the top's bars take.
    legend = [(top_label.capitalize(), PRIMARY)]
    if any(flagged):
        legend.append((_("Under-represented in the %(top)s") % {"top": top_label}, BASELINE))
    for name, color in legend:
        # Markers, not bars: an empty bar trace would still take a slot in every group.
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=name,
                marker={"color": color, "symbol": "square", "size": 11},
                hoverinfo="skip",
            )
        )
    model_chart_layout(fig, height=260)
    fig.update_layout(barmode="group", bargap=0.25)
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    return figure_data(fig)
