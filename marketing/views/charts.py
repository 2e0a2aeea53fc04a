"""Plotly figures for the pages, built on the server and drawn by plotly.js in the browser."""

import json
from collections.abc import Sequence

import plotly.graph_objects as go

PRIMARY = "#4263eb"
MUTED = "#c5cddd"
FONT = (
    '-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, '
    '"PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif'
)


def figure_data(fig: go.Figure) -> dict:
    """The figure as plain JSON data, ready for ``json_script`` and ``Plotly.newPlot``."""
    return json.loads(fig.to_json())


GRID = "#eef1f5"
GUIDE = "#adb5c7"


def base_layout(
    fig: go.Figure, *, height: int, margin_right: int, showlegend: bool, **layout: object
) -> go.Figure:
    """The look every chart shares: transparent background, the page font, slim margins;
    ``layout`` adds or overrides plotly layout properties."""
    fig.update_layout(
        height=height,
        margin={"l": 8, "r": margin_right, "t": 8, "b": 8},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={"family": FONT, "size": 12, "color": "#1c2434"},
        showlegend=showlegend,
        **layout,
        hoverlabel={"font": {"family": FONT}},
    )
    # Tick labels stand off their axes, so the two axes' first labels (0 % and 0 % in the
    # corner of a gains chart) never touch.
    fig.update_xaxes(ticklabelstandoff=8)
    fig.update_yaxes(ticklabelstandoff=8)
    return fig


def guide_line(x: list[float], y: list[float], name: str, *, width: float = 1) -> go.Scatter:
    """A dotted grey reference line (random targeting, perfect calibration) without hover."""
    return go.Scatter(
        x=x,
        y=y,
        mode="lines",
        name=name,
        hoverinfo="skip",
        line={"color": GUIDE, "dash": "dot", "width": width},
    )


def right_axis(title: str, **axis: object) -> dict:
    """A second y axis on the right, drawn over the first and without a grid of its own."""
    return {"title": {"text": title}, "overlaying": "y", "side": "right", "showgrid": False, **axis}


def _layout(fig: go.Figure, *, height: int) -> go.Figure:
    base_layout(fig, height=height, margin_right=24, showlegend=False, bargap=0.35)
    fig.update_xaxes(gridcolor=GRID, zeroline=False, fixedrange=True)
    fig.update_yaxes(automargin=True, fixedrange=True, ticksuffix="  ")
    return fig


def horizontal_bars(
    labels: Sequence[str],
    values: Sequence[float | None],
    texts: Sequence[str],
    *,
    percent_axis: bool = False,
) -> dict:
    """Bars read top to bottom in the given order; ``texts`` label each bar."""
    fig = go.Figure(
        go.Bar(
            x=list(values)[::-1],
            y=list(labels)[::-1],
            orientation="h",
            text=list(texts)[::-1],
            textposition="outside",
            cliponaxis=False,
            marker={"color": PRIMARY, "cornerradius": 4},
            hovertemplate="%{y}: %{text}<extra></extra>",
        )
    )
    _layout(fig, height=max(180, 44 * len(labels) + 30))
    if percent_axis:
        fig.update_xaxes(range=[0, 100], ticksuffix="%")
    return figure_data(fig)
