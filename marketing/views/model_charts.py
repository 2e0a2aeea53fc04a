"""Plotly figures of a click model's training and test results (BERT beside the baseline)."""

from typing import Any

import plotly.graph_objects as go
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from marketing.selectors.segments import suppressed_count
from marketing.views.charts import GRID, PRIMARY, base_layout, figure_data, guide_line, right_axis

BASELINE = "#f08c00"
MODEL_NAMES = {"bert": "BERT", "baseline": gettext_lazy("LightGBM baseline")}
COLORS = {"bert": PRIMARY, "baseline": BASELINE}


def model_chart_layout(fig: go.Figure, *, height: int = 300, legend: bool = True) -> go.Figure:
    base_layout(
        fig,
        height=height,
        margin_right=16,
        showlegend=legend,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
        hovermode="closest",
    )
    fig.update_xaxes(gridcolor=GRID, zeroline=False, automargin=True)
    fig.update_yaxes(gridcolor=GRID, zeroline=False, automargin=True)
    return fig


def _diagonal(fig: go.Figure, name: str, top: float = 1.0) -> None:
    fig.add_trace(guide_line([0, top], [0, top], name))


def hover(text: str, **values: str) -> str:
    """A translated hover text with plotly's placeholders (``%{x}``) put in its named ones."""
    return text % values + "<extra></extra>"


def training_curves(curves: dict[str, Any]) -> dict | None:
    """Training loss per step and validation AUC (right axis)."""
    loss, val_auc = curves.get("loss") or [], curves.get("val_auc") or []
    if not loss:
        return None
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[s for s, _ in loss],
            y=[v for _, v in loss],
            mode="lines",
            name=_("Training loss"),
            line={"color": PRIMARY, "width": 2},
            hovertemplate=hover(_("step %(step)s: loss %(loss)s"), step="%{x}", loss="%{y:.3f}"),
        )
    )
    if val_auc:
        fig.add_trace(
            go.Scatter(
                x=[s for s, _ in val_auc],
                y=[v for _, v in val_auc],
                mode="lines+markers",
                name=_("Validation AUC"),
                yaxis="y2",
                line={"color": BASELINE, "width": 2},
                hovertemplate=hover(
                    _("step %(step)s: validation AUC %(auc)s"), step="%{x}", auc="%{y:.3f}"
                ),
            )
        )
    model_chart_layout(fig)
    fig.update_layout(
        xaxis={"title": {"text": _("Step")}, "range": [0, curves.get("total_steps") or None]},
        yaxis={"title": {"text": _("Training loss (smoothed)")}, "tickformat": ".2f"},
        yaxis2=right_axis(_("Validation AUC"), tickformat=".3f"),
    )
    return figure_data(fig)


def roc_curves(metrics: dict[str, Any]) -> dict:
    fig = go.Figure()
    for key in ("bert", "baseline"):
        roc = metrics[key]["roc"]
        fig.add_trace(
            go.Scatter(
                x=roc["fpr"],
                y=roc["tpr"],
                mode="lines",
                name=_("%(model)s (AUC %(auc)s)")
                % {"model": MODEL_NAMES[key], "auc": f"{metrics[key]['roc_auc']:.3f}"},
                line={"color": COLORS[key], "width": 2},
                hovertemplate=hover(
                    _("false positives %(fpr)s, true positives %(tpr)s"),
                    fpr="%{x:.0%}",
                    tpr="%{y:.0%}",
                ),
            )
        )
    _diagonal(fig, _("Random"))
    model_chart_layout(fig)
    fig.update_xaxes(title={"text": _("False positive rate")}, range=[0, 1], tickformat=".0%")
    fig.update_yaxes(title={"text": _("True positive rate")}, range=[0, 1.02], tickformat=".0%")
    return figure_data(fig)


def calibration(metrics: dict[str, Any]) -> dict:
    """Mean predicted probability against the observed rate, per score bin."""
    fig = go.Figure()
    top = 0.0
    for key in ("bert", "baseline"):
        cal = metrics[key]["calibration"]
        top = max(top, *cal["predicted"], *cal["observed"])
        fig.add_trace(
            go.Scatter(
                x=cal["predicted"],
                y=cal["observed"],
                mode="lines+markers",
                name=str(MODEL_NAMES[key]),
                line={"color": COLORS[key], "width": 2},
                hovertemplate=hover(
                    _("predicted %(predicted)s, observed %(observed)s"),
                    predicted="%{x:.1%}",
                    observed="%{y:.1%}",
                ),
            )
        )
    top = min(1.0, top * 1.05 or 1.0)
    _diagonal(fig, _("Perfectly calibrated"), top)
    model_chart_layout(fig)
    fig.update_xaxes(title={"text": _("Predicted probability")}, range=[0, top], tickformat=".0%")
    fig.update_yaxes(title={"text": _("Observed rate")}, range=[0, top], tickformat=".0%")
    return figure_data(fig)


def cumulative_gains(metrics: dict[str, Any]) -> dict:
    """Share of all responders reached when contacting the top x % by score."""
    fig = go.Figure()
    for key in ("bert", "baseline"):
        gains = metrics[key]["gains"]
        shares = sorted(gains, key=lambda k: float(k.rstrip("%")))
        x = [0.0, *(float(k.rstrip("%")) / 100 for k in shares), 1.0]
        y = [0.0, *(gains[k] or 0.0 for k in shares), 1.0]
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines+markers",
                name=str(MODEL_NAMES[key]),
                line={"color": COLORS[key], "width": 2},
                hovertemplate=hover(
                    _("top %(top)s reaches %(reached)s of responders"),
                    top="%{x:.0%}",
                    reached="%{y:.0%}",
                ),
            )
        )
    _diagonal(fig, _("Random order"))
    model_chart_layout(fig)
    fig.update_xaxes(
        title={"text": _("Customers contacted (by score)")}, range=[0, 1], tickformat=".0%"
    )
    fig.update_yaxes(title={"text": _("Responders reached")}, range=[0, 1.02], tickformat=".0%")
    return figure_data(fig)


def score_histogram(distribution: dict[str, Any]) -> dict | None:
    """Customers per score band, each count shown by the rule of ``shown_count`` (bands under
    the minimum group size hidden, the others rounded)."""
    edges, counts = distribution.get("edges"), distribution.get("counts")
    if not edges or not counts:
        return None
    bands = [suppressed_count(n) for n in counts]
    shown = [band["count"] or 0 for band in bands]
    labels = [
        f"{lo:.0%}–{hi:.0%}" if hi >= 0.1 else f"{lo:.1%}–{hi:.1%}"
        for lo, hi in zip(edges, edges[1:], strict=False)
    ]
    texts = [
        band["display"]
        if band["suppressed"]
        else _("%(count)s customers") % {"count": band["display"]}
        for band in bands
    ]
    fig = go.Figure(
        go.Bar(
            x=[(lo + hi) / 2 for lo, hi in zip(edges, edges[1:], strict=False)],
            y=shown,
            width=[(hi - lo) * 0.92 for lo, hi in zip(edges, edges[1:], strict=False)],
            marker={"color": PRIMARY, "cornerradius": 3},
            customdata=list(zip(labels, texts, strict=True)),
            hovertemplate=hover(
                _("score %(band)s: %(customers)s"),
                band="%{customdata[0]}",
                customers="%{customdata[1]}",
            ),
        )
    )
    model_chart_layout(fig, height=260, legend=False)
    fig.update_xaxes(
        title={"text": _("Score (predicted probability)")},
        tickformat=".0%",
        range=[edges[0], edges[-1]],
    )
    fig.update_yaxes(title={"text": _("Customers")})
    return figure_data(fig)


def versions_over_time(rows: list[dict[str, Any]], promotions: list[Any]) -> dict | None:
    """Test AUC of each finished version of a use case by when it was trained (the served
    model and its baseline), the model in use marked."""
    done = [r for r in rows if r["figures"]["roc_auc"] is not None]
    if not done:
        return None
    fig = go.Figure()
    when = [r["run"].created_at for r in done]
    names = [f"#{r['run'].pk} {r['run'].name}" for r in done]
    fig.add_trace(
        go.Scatter(
            x=when,
            y=[r["figures"]["roc_auc"] for r in done],
            text=names,
            mode="lines+markers",
            name=_("Served model"),
            line={"color": PRIMARY, "width": 2},
            hovertemplate=hover(_("%(run)s: test AUC %(auc)s"), run="%{text}", auc="%{y:.3f}"),
        )
    )
    fig.add_trace(
        go.Scatter(
            x=when,
            y=[r["baseline_auc"] for r in done],
            text=names,
            mode="lines+markers",
            name=str(MODEL_NAMES["baseline"]),
            line={"color": BASELINE, "width": 1.5, "dash": "dot"},
            hovertemplate=hover(_("%(run)s: test AUC %(auc)s"), run="%{text}", auc="%{y:.3f}"),
        )
    )
    in_use = [r for r in done if r["in_use"]]
    if in_use:
        fig.add_trace(
            go.Scatter(
                x=[r["run"].created_at for r in in_use],
                y=[r["figures"]["roc_auc"] for r in in_use],
                mode="markers",
                name=_("In use"),
                marker={"symbol": "star", "size": 16, "color": "#2b8a3e"},
                hoverinfo="skip",
            )
        )
    model_chart_layout(fig, height=280)
    fig.update_layout(yaxis={"title": {"text": _("Test AUC")}, "tickformat": ".3f"})
    return figure_data(fig)


DRIFT_COLORS = {"stable": "#2b8a3e", "moderate": "#f08c00", "major": "#e03131"}


def field_drift(report: dict[str, Any]) -> dict | None:
    """PSI of each field (and the score) against the training data, largest first, with
    the watch and alert thresholds."""
    rows = list(report.get("fields") or [])
    if report.get("score"):
        rows.append({**report["score"], "field": _("(the score)")})
    if not rows:
        return None
    rows.sort(key=lambda r: r["psi"], reverse=True)
    rows = rows[:20]
    watch, alert = report.get("thresholds") or (0.1, 0.25)
    fig = go.Figure(
        go.Bar(
            x=[r["psi"] for r in rows][::-1],
            y=[r["field"] for r in rows][::-1],
            orientation="h",
            marker={"color": [DRIFT_COLORS.get(r["level"], PRIMARY) for r in rows][::-1]},
            hovertemplate=hover(_("%(field)s: PSI %(psi)s"), field="%{y}", psi="%{x:.3f}"),
        )
    )
    model_chart_layout(fig, height=max(200, 30 * len(rows) + 60), legend=False)
    for value, name, side in ((watch, _("watch"), "top left"), (alert, _("alert"), "top right")):
        fig.add_vline(
            x=value,
            line={"color": DRIFT_COLORS["moderate" if value == watch else "major"], "dash": "dot"},
            annotation_text=name,
            annotation_position=side,
        )
    fig.update_layout(xaxis={"title": {"text": _("Population stability index (PSI)")}})
    return figure_data(fig)


def drift_over_time(checks: list[Any]) -> dict | None:
    """The largest field PSI and the score's PSI of each drift check of a use case's
    versions, by when it ran, with the alert threshold."""
    if not checks:
        return None
    fig = go.Figure()
    when = [c.created_at for c in checks]
    names = [f"#{c.training_run_id} {c.training_run.name}" for c in checks]
    largest = [max((f["psi"] for f in c.report.get("fields") or []), default=0.0) for c in checks]
    fig.add_trace(
        go.Scatter(
            x=when,
            y=largest,
            text=names,
            mode="lines+markers",
            name=_("Largest field PSI"),
            line={"color": DRIFT_COLORS["major"], "width": 2},
            hovertemplate=hover(_("%(run)s: PSI %(psi)s"), run="%{text}", psi="%{y:.3f}"),
        )
    )
    scores = [(c.report.get("score") or {}).get("psi") for c in checks]
    if any(s is not None for s in scores):
        fig.add_trace(
            go.Scatter(
                x=when,
                y=scores,
                text=names,
                mode="lines+markers",
                name=_("Score PSI"),
                line={"color": PRIMARY, "width": 2},
                hovertemplate=hover(_("%(run)s: PSI %(psi)s"), run="%{text}", psi="%{y:.3f}"),
            )
        )
    alert = (checks[-1].report.get("thresholds") or [0.1, 0.25])[1]
    fig.add_hline(y=alert, line={"color": DRIFT_COLORS["major"], "dash": "dot"})
    model_chart_layout(fig, height=260)
    fig.update_layout(yaxis={"title": {"text": "PSI"}, "rangemode": "tozero"})
    return figure_data(fig)
