"""The view in the URL: a view written as query parameters reads back as the same view, and a
mistyped parameter falls back to the default with a message naming it and its allowed values."""

from app.view_state import View, merged_query, read_view, share_link, view_params


def test_a_view_round_trips_through_its_query_parameters():
    view = View(
        lam=0.35,
        members=(0, 2, 3),
        objectives=("wco", "uwo"),
        x="sqrt_kl",
        show=frozenset({"proxy", "fits"}),
    )
    params = view_params(view)
    assert params == {
        "lam": "0.35",
        "members": "0,2,3",
        "objectives": "wco,uwo",
        "x": "sqrt_kl",
        "show": "proxy,fits",
    }
    assert read_view(params, members_total=5) == view
    assert view_params(View()) == {}  # defaults are not written into the link


def test_bad_parameters_name_the_field_and_the_allowed_values():
    view = read_view({"lam": "-1", "members": "0,9", "objectives": "best", "x": "time"}, 5)
    assert view == View()
    text = " ".join(view.problems)
    assert "lam='-1'" in text and "[0, 10]" in text
    assert "members='0,9'" in text and "0-4" in text
    assert "objectives='best'" in text and "wco" in text
    assert "x='time'" in text and "sqrt_kl" in text


def test_the_share_link_keeps_the_run_and_replaces_the_view():
    query = merged_query({"run": "k3v9x2mqp7ab", "lam": "1"}, View(lam=0.5, members=(1,)))
    assert query == {"run": "k3v9x2mqp7ab", "lam": "0.5", "members": "1"}
    link = share_link("http://localhost:8501/", "result", query)
    assert link == "http://localhost:8501/result?run=k3v9x2mqp7ab&lam=0.5&members=1"


def test_compare_names_the_metric_and_direct_alignment_losses():
    view = View(objectives=("wco", "dpo"), x="sqrt_kl", show=frozenset({"band"}), metric="proxy")
    params = view_params(view)
    assert params == {"objectives": "wco,dpo", "x": "sqrt_kl", "show": "band", "metric": "proxy"}
    assert read_view(params) == view
    bad = read_view({"metric": "loss"})
    assert bad == View() and "metric='loss'" in bad.problems[0] and "gold" in bad.problems[0]
    assert merged_query({"compare": "a,b", "metric": "gold"}, view)["compare"] == "a,b"
