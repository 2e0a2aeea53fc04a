"""Plotly figure of an audience's campaign results. It takes the JSON the results job stores
(``Audience.results``)."""

from typing import Any

import plotly.graph_objects as go
from django.utils.translation import gettext as _

from marketing.views.charts import GUIDE, PRIMARY, figure_data
from marketing.views.model_charts import hover, model_chart_layout


def response_rates(results: dict[str, Any]) -> dict | None:
    """The response rate of the contacted members and of the control group, each with its
    confidence interval as error bars; None when a group has no members."""
    treated, control = results["treated"], results["control"]
    if treated["rate"] is None or control["rate"] is None:
        return None
    groups = (treated, control)
    level = f"{results['confidence']:.0%}"
    fig = go.Figure(
        go.Bar(
            x=[_("Contacted"), _("Control")],
            y=[group["rate"] for group in groups],
            marker={"color": [PRIMARY, GUIDE], "cornerradius": 4},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [group["interval"][1] - group["rate"] for group in groups],
                "arrayminus": [group["rate"] - group["interval"][0] for group in groups],
                "color": "#1c2434",
                "thickness": 1.5,
                "width": 8,
            },
            customdata=[
                [f"{group['members']:,}", f"{group['responded']:,}", *group["interval"]]
                for group in groups
            ],
            hovertemplate=hover(
                _(
                    "%(group)s: %(rate)s (%(responded)s of %(members)s; %(level)s interval "
                    "%(low)s to %(high)s)"
                ),
                group="%{x}",
                rate="%{y:.2%}",
                responded="%{customdata[1]}",
                members="%{customdata[0]}",
                level=level,
                low="%{customdata[2]:.2%}",
                high="%{customdata[3]:.2%}",
            ),
        )
    )
    model_chart_layout(fig, height=260, legend=False)
    fig.update_layout(bargap=0.5)
    fig.update_yaxes(title={"text": _("Response rate")}, tickformat=".1%", rangemode="tozero")
    return figure_data(fig)
