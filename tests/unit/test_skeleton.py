"""Pages kept ready (webui/skeleton.py): cut at their markers once, filled in with escaped values."""
from webui.skeleton import Skeleton, Skeletons


def test_a_page_is_cut_at_every_use_of_a_marker_and_filled_in_escaped():
    seen = {}

    def render(marker):
        seen.update(marker)
        return f"<p>{marker['name']} 様</p><a href=\"/r/{marker['token']}\">{marker['name']}</a>"
    skeleton = Skeleton.render(render, ("name", "token"))
    assert skeleton.slots == ["name", "token", "name"]
    assert all(marker not in part.decode() for marker in seen.values() for part in skeleton.parts)
    assert skeleton.fill({"name": "<script>&\"'", "token": "abc_-1"}) == (
        '<p>&lt;script&gt;&amp;&#34;&#39; 様</p><a href="/r/abc_-1">&lt;script&gt;&amp;&#34;&#39;</a>').encode()


def test_each_rendering_has_its_own_markers():
    markers = []

    def render(marker):
        markers.append(marker["name"])
        return ""
    Skeleton.render(render, ("name",))
    Skeleton.render(render, ("name",))
    assert markers[0] != markers[1]


def test_the_oldest_skeletons_go_past_the_size():
    kept = Skeletons(size=2)
    for key in "abc":
        kept.put(key, Skeleton([key.encode()], []))
    assert kept.get("a") is None and kept.get("b").fill({}) == b"b" and kept.get("c").fill({}) == b"c"
