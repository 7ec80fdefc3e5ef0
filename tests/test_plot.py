"""app/plot.py: the words it turns into HTML, the knob and pill frames it sends to the browser."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import pytest

from app import plot
from tests.app_support import framed


def test_md_keeps_the_pages_markdown_and_escapes_the_rest():
    got = plot.md("**WCO** loses *less* than `mean` <script>x</script> & more\n\nnext")
    assert got == (
        "<p><b>WCO</b> loses <i>less</i> than <code>mean</code> &lt;script&gt;x&lt;/script&gt; "
        "&amp; more</p><p>next</p>"
    )
    assert plot.md("n * 2 and 3 * n") == "<p>n * 2 and 3 * n</p>"  # a lone star is no italic


def test_a_frame_replaces_the_traces_it_names_and_its_layout_keys():
    base = go.Figure([go.Scatter(x=[1, 2], y=[0, 0], name="a"), go.Scatter(x=[1], y=[1], name="b")])
    base.update_layout(title={"text": "before"})
    tail = go.Figure([go.Scatter(x=[1], y=[5], name="b")]).update_layout(title={"text": "after"})
    f = plot.frame(tail, at=1, layout=("title",), below="<p>x</p>")
    got = framed(plot.figure_json(base), f)
    assert [t["name"] for t in got["data"]] == ["a", "b"]
    assert got["data"][1]["y"] == [5] and got["data"][0]["y"] == [0, 0]
    assert got["layout"]["title"]["text"] == "after" and f["below"] == "<p>x</p>"


def test_a_knob_needs_a_frame_slot_for_every_value():
    assert plot.Knob("n", ["1", "2"], 1).as_arg()["frames"] == [None, None]
    with pytest.raises(ValueError, match="knob 'n'"):
        plot.Knob("n", ["1", "2"], 0, [{}]).as_arg()
    with pytest.raises(ValueError, match="index 2"):
        plot.Knob("n", ["1", "2"], 2).as_arg()


def test_a_show_pill_hides_its_curves_and_the_title_states_the_shown_ones():
    from app import charts
    from app.describe import takeaway, takeaway_parts
    from tests.app_support import example

    curves = [c for c in example()[0]["curves"] if c["objective"] in ("mean", "wco", "uwo")]
    title = plot.title_arg(*takeaway_parts(curves))
    assert plot.title_text(title) == takeaway(curves)  # the parts make the whole title
    pills = [plot.Pills("objectives", "curves", ["mean", "wco", "uwo"], ["wco"])]
    got = plot.figure_json(charts.curves_figure(curves), pills, title)
    shown = {t["name"] for t in got["data"] if t.get("visible", True)}
    assert shown == {"wco", "wco · proxy", "wco · peak"}
    assert got["layout"]["title"]["text"] == takeaway(
        [c for c in curves if c["objective"] == "wco"]
    )
    assert plot.title_text(title, set()) == ""


def test_pills_are_checked_and_a_subset_has_one_key():
    assert plot.subset_key([3, 0, 2]) == "0,2,3"
    assert plot.one_click([0, 1, 2], (0, 2)) == [(2,), (0, 1, 2), (0,)]
    assert plot.one_click([0, 1], (1,)) == [(0, 1)]  # never none on
    arg = plot.Pills("members", "members", [0, 1, 2], [2, 0], kind="frames").as_arg()
    assert arg["chosen"] == [0, 2] and arg["labels"] == ["0", "1", "2"]
    with pytest.raises(ValueError, match="pills 'members'"):
        plot.Pills("members", "members", [0, 1], [5]).as_arg()
    with pytest.raises(ValueError, match="kind 'hide'"):
        plot.Pills("members", "members", [0, 1], [0], kind="hide").as_arg()


def version(js_file: Path) -> str:
    """The version in a plotly.js bundle's header comment ("* plotly.js ... v4.1.1")."""
    return js_file.read_text()[:200].split(" v", 1)[1].split()[0]


def test_the_frontend_is_the_basic_bundle_of_the_plotly_js_the_python_package_writes_for():
    import plotly

    shipped = plot.FRONTEND / "plotly-basic.min.js"
    assert "plotly.js (basic - minified)" in shipped.read_text()[:200]
    full = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert version(shipped) == version(full)


def test_charts_carry_real_colours_not_streamlits_placeholders():
    """Streamlit's plotly template holds placeholder colours (#000001 ...) that only
    st.plotly_chart replaces; a chart drawn by this component gets real ones."""
    import json

    import streamlit.elements.plotly_chart  # noqa: F401  (registers the "streamlit" template)

    from app import charts
    from tests.app_support import example

    text = json.dumps(plot.figure_json(charts.curves_figure(example()[0]["curves"])))
    assert "#000001" not in text and "#000011" not in text
    assert plot.figure_json(go.Figure())["layout"]["template"] == plot.TEMPLATE


def test_downloaded_report_carries_real_colours_not_streamlits_placeholders():
    """The Result page's HTML report is drawn by plotly.js on its own, where nothing replaces
    the placeholders: a line without a colour of its own would be drawn near-black."""
    import streamlit.elements.plotly_chart  # noqa: F401  (registers the "streamlit" template)

    from app import charts
    from tests.app_support import example

    result = example()[0]
    page = charts.report_html("report", result, result["curves"])
    assert "#000001" not in page and "#000011" not in page
    assert '"colorway":["#0068c9"' in page.replace(", ", ",")
