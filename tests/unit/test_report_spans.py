"""The report's lines and bands across a subplot are what plotly's own add_hline / add_vline / add_vrect draw.

report_figures keeps them as plain dicts until the figure is done (plotly re-validated every earlier layout object
on each call); the oracle is plotly itself, given the same lines on an equal figure.
"""

from orchestration.lib import report_figures as rf

RED = "#c62828"


def _figure(rows: int, empty_row: int | None = None, on_plotly: bool = False):
    """report_figures' figure, or plotly's own (the oracle) when ``on_plotly``."""
    fig = (rf.plotly_figure if on_plotly else rf.new_figure)(rows=rows, titles=[f"panel {i}" for i in range(rows)])
    for row in range(1, rows + 1):
        if row != empty_row:
            fig.add_trace(dict(type="scatter", x=[0.1, 0.9], y=[1, 2], name=f"series {row}"), row=row, col=1)
    return fig


def _layout_objects(figure: dict) -> tuple[list, list]:
    layout = figure["layout"]
    return layout.get("shapes", []), layout.get("annotations", [])


def test_lines_and_bands_equal_plotlys_own_on_every_subplot_and_none_on_an_empty_one():
    ours, plotlys = _figure(3, empty_row=3), _figure(3, empty_row=3, on_plotly=True)
    line = dict(color=RED, dash="dash", width=1.5)

    rf.hline(ours, 0.5, line, "retraining below this", "left", RED, row=2)
    plotlys.add_hline(
        y=0.5,
        line=line,
        annotation_text="retraining below this",
        annotation_position="top left",
        annotation_font_color=RED,
        row=2,
        col=1,
    )
    rf.hline(ours, 0, dict(color="#616e7c", dash="dot", width=1), row=1)
    plotlys.add_hline(y=0, line=dict(color="#616e7c", dash="dot", width=1), row=1, col=1)
    rf.vrect(ours, 0, 0.8, RED, 0.07, row=2)
    plotlys.add_vrect(x0=0, x1=0.8, fillcolor=RED, opacity=0.07, line_width=0, row=2, col=1)
    rf.vline(ours, 0.8, line, "four-fifths", RED, row=1)
    plotlys.add_vline(
        x=0.8,
        line=line,
        annotation_text="four-fifths",
        annotation_position="top",
        annotation_font_color=RED,
        row=1,
        col=1,
    )
    rf.hline(ours, 1, line, "on a panel without data", row=3)  # plotly skips a subplot with no trace
    plotlys.add_hline(y=1, line=line, annotation_text="on a panel without data", row=3, col=1)

    shapes, annotations = _layout_objects(rf.done(ours))
    expected_shapes, expected_annotations = _layout_objects(rf.done(plotlys))
    assert len(shapes) == 4 and shapes == expected_shapes
    # the subplot titles first, then each line's text
    assert len(annotations) == 3 + 2 and annotations == expected_annotations


def test_a_target_line_with_its_text_at_the_right_end():
    ours, plotlys = _figure(1), _figure(1, on_plotly=True)
    rf.hline(ours, 1, dict(color=rf.COLORS[2], dash="dash"), "target")
    plotlys.add_hline(y=1, line=dict(color=rf.COLORS[2], dash="dash"), annotation_text="target")
    assert _layout_objects(rf.done(ours)) == _layout_objects(rf.done(plotlys))
