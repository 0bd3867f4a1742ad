"""Customer identity across a visit (issue 21, edge/identity/): a person who leaves the view and
comes back continues their customer (one id, one alert per rule), look-alikes in view together
stay two customers, the gallery forgets after ``identity.memory_s``, and an alert's box is the
customer's box in the frame it was decided in (an exit decision says so).

Pipeline tests use the small stub stages of test_customers.py (painted people, a garment detector
that names the upper half by colour); the appearance here is the tracker's colour appearance, the
cue the daemon falls back on without an embedding. The embedding and its distances on real
people are measured in docs/reid.md and tested in test_reid_distances.py / test_identity_real.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge.config import IdentityConfig, ZoneConfig
from edge.pipeline import CameraPipeline
from edge.consensus import GarmentVotes
from edge.config import ConsensusConfig
from edge.customer import Customer
from edge.identity import AppearanceViews, CustomerGallery
from edge.identity.gallery import View
from edge.sources import Frame
from test_customers import BLUE, GREEN, RED, canvas, pipeline, run

FPS = 10.0


def visit(x: int, upper=RED, lower=BLUE, frames: int = 15) -> list[np.ndarray]:
    return [canvas((x, upper, lower))] * frames


def nobody(seconds: float) -> list[np.ndarray]:
    return [canvas()] * int(seconds * FPS)


def ids_of(ids: list[list[int]]) -> set[int]:
    return {i for frame_ids in ids for i in frame_ids}


# -- a customer who leaves and comes back -------------------------------------------------------

def test_a_customer_back_after_leaving_the_view_keeps_the_id_and_gets_one_alert(tmp_path):
    # In view 1.5 s at the left, gone 5 s (the track ends after tracker.max_lost_s = 3 s), back
    # near where it left: the tracker cannot follow, the gallery recognises the colours.
    frames = visit(60) + nobody(5) + visit(200, frames=20)
    alerts, ids = run(pipeline(tmp_path), frames)
    assert ids_of(ids) == {1}
    assert [(a.track_id, a.rule) for a in alerts] == [(1, "dress")]


def test_without_the_gallery_the_same_return_is_a_second_customer_and_alert(tmp_path):
    pipe = pipeline(tmp_path)
    pipe.config.identity.enabled = False
    alerts, ids = run(pipe, visit(60) + nobody(5) + visit(200, frames=20))
    assert ids_of(ids) == {1, 2}
    assert [(a.track_id, a.rule) for a in alerts] == [(1, "dress"), (2, "dress")]


def test_the_analytics_count_a_returning_customer_once(tmp_path):
    pipe = pipeline(tmp_path)
    windows = []
    for index, image in enumerate(visit(60) + nobody(5) + visit(200, frames=20)):
        windows += pipe.process(Frame(image, index, 1_767_225_600.0 + index / FPS, index / FPS)).closed_windows
    windows += pipe.finish().closed_windows
    assert sum(w["customers"] for w in windows) == 1
    assert sum(w["tracks"] for w in windows) == 1


def test_the_gallery_forgets_after_memory_s(tmp_path):
    pipe = pipeline(tmp_path)
    pipe.config.identity.memory_s = 4.0  # left at 1.5 s, forgotten at 5.5 s; back at 8 s
    alerts, ids = run(pipe, visit(60) + nobody(6.5) + visit(200, frames=20))
    assert ids_of(ids) == {1, 2}
    assert [a.rule for a in alerts] == ["dress", "dress"]


def look_alike(x: int, frames: int = 20) -> list[np.ndarray]:
    """The visit's person with green shoes: colour distance 0.23 (within colour_same_distance 0.28,
    not within half of it)."""
    image = canvas((x, RED, BLUE))
    image[270:300, x:x + 80] = GREEN
    return [image] * frames


def test_a_similar_person_coming_in_where_the_customer_left_continues_it(tmp_path):
    alerts, ids = run(pipeline(tmp_path), visit(60) + nobody(5) + look_alike(200))
    assert ids_of(ids) == {1}
    assert [a.rule for a in alerts] == ["dress"]


def test_a_similar_person_coming_in_far_from_where_the_customer_left_is_a_new_customer(tmp_path):
    # First seen 460 px (2.3 person heights) away: only the same view seen again would continue it.
    alerts, ids = run(pipeline(tmp_path), visit(60) + nobody(5) + look_alike(520))
    assert ids_of(ids) == {1, 2}
    assert [(a.track_id, a.rule) for a in alerts] == [(1, "dress"), (2, "dress")]


def test_the_same_view_again_far_from_where_the_customer_left_continues_it(tmp_path):
    alerts, ids = run(pipeline(tmp_path), visit(60) + nobody(5) + visit(520, frames=20))
    assert ids_of(ids) == {1}
    assert [a.rule for a in alerts] == ["dress"]


def test_somebody_else_after_a_customer_left_is_a_new_customer(tmp_path):
    alerts, ids = run(pipeline(tmp_path), visit(60) + nobody(5) + visit(480, GREEN, GREEN, frames=20))
    assert ids_of(ids) == {1, 2}
    assert [(a.track_id, a.rule) for a in alerts] == [(1, "dress"), (2, "dress")]


def mid_floor(x: int, shoes=None, frames: int = 20) -> list[np.ndarray]:
    """A wide view (1280 x 600) with the visit's person standing at y 150..350, well inside it
    (border_heights 0.5 = 100 px); ``shoes`` paints the look-alike's green shoes."""
    image = np.full((600, 1280, 3), 120, np.uint8)
    image[150:250, x:x + 80] = RED
    image[250:350, x:x + 80] = BLUE
    if shoes is not None:
        image[320:350, x:x + 80] = shoes
    return [image] * frames


def wide_nobody(seconds: float) -> list[np.ndarray]:
    return [np.full((600, 1280, 3), 120, np.uint8)] * int(seconds * FPS)


def test_a_customer_lost_mid_floor_who_reappears_elsewhere_mid_floor_continues_it(tmp_path):
    # Lost at x 300 away from every border (hidden or missed, not gone: nobody walks out
    # mid-floor), found again 5 s later 2.5 person heights away, also mid-floor, in a view that
    # differs as much as the look-alike's (colour 0.23): the same customer, no second alert.
    alerts, ids = run(pipeline(tmp_path), mid_floor(300) + wide_nobody(5) + mid_floor(800, shoes=GREEN))
    assert ids_of(ids) == {1}
    assert [a.rule for a in alerts] == ["dress"]


def test_a_look_alike_walking_in_at_the_border_is_a_new_customer(tmp_path):
    # The same two appearances, but the second one comes in at the right border of the view: it
    # walked in, so only the same view seen again would continue the customer lost mid-floor.
    alerts, ids = run(pipeline(tmp_path), mid_floor(300) + wide_nobody(5) + mid_floor(1200, shoes=GREEN))
    assert ids_of(ids) == {1, 2}
    assert [(a.track_id, a.rule) for a in alerts] == [(1, "dress"), (2, "dress")]


def test_a_look_alike_coming_through_a_door_mid_floor_is_a_new_customer(tmp_path):
    # The same return as above, but the camera names a zone around where the second one appears as
    # an entrance (a door in the middle of the view): it walked in there, like at the border.
    pipe = pipeline(tmp_path)
    camera = pipe.config.cameras[0].model_copy(update={
        "zones": {"fitting_room": ZoneConfig(points=[(760, 300), (920, 300), (920, 400), (760, 400)])},
        "entrances": ["fitting_room"]})
    pipe = CameraPipeline(pipe.config, camera, models=pipe.models, state_dir=tmp_path)
    alerts, ids = run(pipe, mid_floor(300) + wide_nobody(5) + mid_floor(800, shoes=GREEN))
    assert ids_of(ids) == {1, 2}
    assert [(a.track_id, a.rule) for a in alerts] == [(1, "dress"), (2, "dress")]


def test_without_the_border_rule_the_mid_floor_return_is_a_second_customer(tmp_path):
    pipe = pipeline(tmp_path)
    pipe.config.identity.border_heights = 0
    alerts, ids = run(pipe, mid_floor(300) + wide_nobody(5) + mid_floor(800, shoes=GREEN))
    assert ids_of(ids) == {1, 2}


# -- look-alikes --------------------------------------------------------------------------------

def test_look_alikes_in_view_together_are_never_merged(tmp_path):
    # Two people dressed alike: both in view 2 s; the right one is hidden 5 s (its track ends)
    # while the left one stays; the right one comes back. The left one was in view when the
    # newcomer appeared, so only the right one's record may be continued.
    both = [canvas((60, RED, BLUE), (480, RED, BLUE))] * 20
    left_only = [canvas((60, RED, BLUE))] * 50
    frames = both + left_only + both
    alerts, ids = run(pipeline(tmp_path), frames)
    assert ids_of(ids) == {1, 2}
    assert all(len(set(frame_ids)) == len(frame_ids) for frame_ids in ids)  # never one id twice in a frame
    assert sorted(a.track_id for a in alerts) == [1, 2]


def test_a_look_alike_whose_first_box_was_in_view_with_the_customer_is_a_new_customer(tmp_path):
    # The store walk's merge: A, dressed alike, walks out at one spot in the very frame B shows up
    # at another. B's first boxes come before the tracker confirms it, and A is gone by then; the
    # one frame they shared says they are two people (before: B continued A, one count, no alert).
    a_alone = [canvas((60, RED, BLUE))] * 20
    together = [canvas((60, RED, BLUE), (300, RED, BLUE))]
    b_alone = [canvas((300, RED, BLUE))] * 20
    alerts, ids = run(pipeline(tmp_path), a_alone + together + b_alone)
    assert ids_of(ids) == {1, 2}
    assert sorted(a.track_id for a in alerts) == [1, 2]


def test_a_customer_knows_when_its_track_had_its_first_box(tmp_path):
    pipe = pipeline(tmp_path)
    run(pipe, [canvas()] * 5 + visit(200, frames=10))
    customer = pipe.customers.get(1) or pipe.customers.gallery.take(1)
    # the tracker confirms on the third box (min_hits 3): two frames after the first one
    assert customer.first_box_at == pytest.approx(1_767_225_600.0 + 0.5)
    assert customer.first_seen == pytest.approx(1_767_225_600.0 + 0.7)


# -- the alert box ------------------------------------------------------------------------------

def test_an_alert_box_is_the_customer_box_in_its_frame(tmp_path):
    pipe = pipeline(tmp_path)
    for index, image in enumerate(visit(200, frames=12)):
        result = pipe.process(Frame(image, index, 1_767_225_600.0 + index / FPS, index / FPS))
        for alert in result.alerts:
            row = list(result.tracks.track_ids).index(alert.track_id)
            assert alert.box == [round(float(v), 1) for v in result.tracks.xyxy[row]]
            assert alert.frame_index == index and alert.decided != "exit"
            return
    pytest.fail("no alert")


def test_an_exit_decision_says_so_and_carries_the_last_box(tmp_path):
    # Seen 4 frames at 0.7 (too few votes to settle in view), walking right; decided at exit.
    pipe = pipeline(tmp_path, garment_score=0.7)
    frames = [canvas((100 + 10 * i, RED, RED)) for i in range(4)] + nobody(4)
    last_box = None
    alerts = []
    for index, image in enumerate(frames):
        result = pipe.process(Frame(image, index, 1_767_225_600.0 + index / FPS, index / FPS))
        if len(result.tracks):
            last_box = [round(float(v), 1) for v in result.tracks.xyxy[0]]
        alerts += result.alerts
    assert [(a.rule, a.decided) for a in alerts] == [("dress", "exit")]
    assert alerts[0].box == last_box and last_box[0] == 130.0


# -- the gallery and the views on their own -----------------------------------------------------

def _customer(cid: int, first: float, last: float, embedding: np.ndarray | None = None, x: float = 100,
              first_box_at: float | None = None) -> Customer:
    c = Customer(cid, first, last, GarmentVotes(ConsensusConfig()), first_box_at=first_box_at)
    c.appearance.add_embedding(embedding)
    c.first_box = c.box = np.array([x, 100, x + 40, 200], np.float32)  # 100 px tall at x
    return c


def _unit(seed: int, dim: int = 64) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def _near_unit(seed: int, other: int, share: float) -> np.ndarray:
    v = _unit(seed) + share * _unit(other)
    return v / np.linalg.norm(v)


def test_gallery_finds_the_nearest_remembered_customer_and_honours_its_limits():
    cfg = IdentityConfig(memory_s=60, max_customers=2)
    gallery = CustomerGallery(cfg)
    a, b = _customer(1, 0, 10, _unit(1)), _customer(2, 0, 12, _unit(2))
    gallery.remember(a)
    gallery.remember(b)
    newcomer = _customer(3, 20, 20, _near_unit(1, 9, 0.45))  # cosine distance ~0.09
    found = gallery.find(newcomer)
    assert found is not None and found[0] is a and found[1] == "embedding"
    assert gallery.find(_customer(4, 20, 20, _unit(3))) is None  # a stranger
    assert gallery.find(_customer(5, 9, 9, _unit(1))) is None  # a was still in view at 10 s
    # confirmed at 20 s, but its track's first box was at 9.5 s, while a was still in view
    assert gallery.find(_customer(5, 20, 20, _near_unit(1, 9, 0.45), first_box_at=9.5)) is None
    assert gallery.find(_customer(5, 20, 20, _near_unit(1, 9, 0.45), first_box_at=10.5))[0] is a
    assert gallery.find(_customer(7, 20, 20, _near_unit(1, 9, 0.45), x=100 + 210)) is None  # 2.1 heights away
    assert gallery.find(_customer(9, 20, 20, _unit(1), x=100 + 210)) is not None  # ... but the same view again
    assert gallery.find(_customer(8, 20, 20, _unit(1), x=100 + 190)) is not None  # 1.9 heights: near
    # vanished and reappeared away from the view's borders (50 px = half a height): still in view
    # all along, so 2.1 heights away no longer needs the same view again; at a border it does
    view = View(480, 960)
    assert gallery.find(_customer(7, 20, 20, _near_unit(1, 9, 0.45), x=100 + 210), view=view)[0] is a
    low_view = View(240, 960)  # boxes end 40 px above its bottom border: within half a height of it
    assert gallery.find(_customer(7, 20, 20, _near_unit(1, 9, 0.45), x=100 + 210), view=low_view) is None
    # ... or mid-floor, but with the feet (330, 200) in a door of the view: walked in there
    door = ((300.0, 150.0), (380.0, 150.0), (380.0, 260.0), (300.0, 260.0))
    door_view = View(480, 960, entrances=(door,))
    assert gallery.find(_customer(7, 20, 20, _near_unit(1, 9, 0.45), x=100 + 210), view=door_view) is None
    gallery.remember(_customer(6, 0, 15, _unit(6)))  # a third: the oldest (a) is forgotten
    assert len(gallery) == 2 and gallery.find(newcomer) is None
    gallery.forget_expired(12 + 61)
    assert len(gallery) == 1  # b last seen at 12 s: gone; the one seen at 15 s stays a second longer


def test_views_keep_front_and_back_apart_and_the_distance_is_the_closest_pair():
    views = AppearanceViews(max_views=3, view_distance=0.13)
    front, back = _unit(1), _unit(2)
    for _ in range(3):
        views.add_embedding(front)
    views.add_embedding(back)
    assert len(views.embeddings.items) == 2
    only_back = AppearanceViews()
    only_back.add_embedding(back)
    assert views.distance(only_back) == ("embedding", pytest.approx(0.0, abs=1e-5))
    for seed in (3, 4, 5):
        views.add_embedding(_unit(seed))
    assert len(views.embeddings.items) == 3  # never more than max_views


# -- a customer who turns round where they stand -------------------------------------------------

def backpack(x: int, frames: int = 15) -> list[np.ndarray]:
    """The visit's person seen from behind: a dark backpack over 40 % of the upper body (colour
    distance 0.48: beyond the tracker's in-view gate for a person standing still)."""
    image = canvas((x, RED, BLUE))
    image[130:158, x + 15:x + 65] = (30, 30, 30)
    return [image] * frames


def with_attribute_readings(pipe):
    from test_attribute_fusion import ProfileReader

    pipe.models.attributes = ProfileReader()  # same lower-body colour, same clothes reading
    return pipe


def test_a_customer_turning_round_in_place_in_the_same_clothes_keeps_the_id(tmp_path):
    pipe = with_attribute_readings(pipeline(tmp_path))
    alerts, ids = run(pipe, visit(200) + backpack(200))
    assert ids_of(ids) == {1}
    assert [a.rule for a in alerts] == ["dress"]


def test_without_the_identity_stage_the_turn_is_a_second_customer(tmp_path):
    pipe = with_attribute_readings(pipeline(tmp_path))
    pipe.config.identity.enabled = False
    alerts, ids = run(pipe, visit(200) + backpack(200))
    assert ids_of(ids) == {1, 2}


def test_a_customer_hidden_for_two_seconds_who_turns_meanwhile_keeps_the_id(tmp_path):
    # lost where they stood (behind another shopper, or the detector missed them standing still),
    # back at the same spot 2 s later showing their back: within in_place_s of the tracker's
    # own max_lost_s
    pipe = with_attribute_readings(pipeline(tmp_path))
    alerts, ids = run(pipe, visit(200) + nobody(2.0) + backpack(200))
    assert ids_of(ids) == {1}
    assert [a.rule for a in alerts] == ["dress"]


def test_a_customer_lost_while_walking_is_not_continued_at_their_last_spot_seconds_later(tmp_path):
    # walking 15 px a frame (about 0.75 person heights a second), lost, and 2 s later a person in
    # another view stands where they were last seen: the next walker, not them (in_place_walking_s)
    walk = [canvas((50 + 15 * f, RED, BLUE)) for f in range(15)]
    pipe = with_attribute_readings(pipeline(tmp_path))
    alerts, ids = run(pipe, walk + nobody(2.0) + backpack(50 + 15 * 14))
    assert ids_of(ids) == {1, 2}


def test_a_new_track_at_the_same_spot_after_in_place_s_must_look_like_the_customer(tmp_path):
    pipe = with_attribute_readings(pipeline(tmp_path))
    pipe.config.identity.in_place_s = 1.0
    alerts, ids = run(pipe, visit(200) + nobody(2.0) + backpack(200))
    assert ids_of(ids) == {1, 2}


class BackViewReader:
    """The attribute stub, except that a back view (the backpack) reads as outwear: what the model
    reads of a person changes when they turn round (a long coat from behind reads as a dress)."""

    def __init__(self):
        from test_attribute_fusion import ProfileReader

        self.profile = ProfileReader()
        self.names, self.thresholds, self.margin = self.profile.names, self.profile.thresholds, self.profile.margin

    def read(self, crop_bgr):
        from edge.attributes import AttributeScores

        scores = dict(self.profile.read(crop_bgr).scores)
        if (np.abs(crop_bgr.astype(int) - 30).max(axis=2) < 5).mean() > 0.05:  # the dark backpack
            scores["outwear"] = 0.95
        return AttributeScores(scores)


def test_a_customer_turning_round_in_place_keeps_the_id_though_the_back_reads_other_clothes(tmp_path):
    pipe = pipeline(tmp_path)
    pipe.models.attributes = BackViewReader()
    alerts, ids = run(pipe, visit(200) + backpack(200))
    assert ids_of(ids) == {1}
    assert [a.rule for a in alerts].count("dress") == 1


def test_the_gallery_colour_distances_are_the_tracker_colour_distance():
    from edge.tracking import appearance as colour

    rng = np.random.default_rng(3)
    hists = rng.random((5, len(colour.PARTS), colour.BINS)).astype(np.float32)
    hists /= hists.sum(axis=2, keepdims=True)
    table = colour.pairwise_distances(hists[:2], hists)
    expected = [[colour.distance(a, b) for b in hists] for a in hists[:2]]
    np.testing.assert_allclose(table, expected, atol=1e-3)  # float32: sqrt(1 - bc) near 0 amplifies rounding


def test_customer_speed_in_person_heights_per_second_over_sparse_boxes():
    c = Customer(1, 0.0, 0.0, GarmentVotes(ConsensusConfig()))
    assert c.speed() is None  # never seen
    for i in range(3):  # 0.2 s of boxes: too short to say
        c.saw(i * 0.1, np.array([100.0, 100, 150, 300]))
    assert c.speed() is None
    for t in (0.9, 1.5, 2.2):  # a standing person the detector keeps losing: few boxes, a few px of jitter
        c.saw(t, np.array([102.0, 101, 152, 301]))
    assert c.speed() < 0.05
    walker = Customer(2, 0.0, 0.0, GarmentVotes(ConsensusConfig()))
    for i in range(25):  # 15 px a frame at 10 fps, 200 px tall: 0.75 heights a second
        walker.saw(i * 0.1, np.array([100.0 + 15 * i, 100, 150 + 15 * i, 300]))
    assert walker.speed() == pytest.approx(0.75, rel=0.01)


def _basis(i: int, dim: int = 64) -> np.ndarray:
    v = np.zeros(dim, np.float32)
    v[i] = 1.0
    return v


def _toward(i: int, j: int, share: float) -> np.ndarray:
    """Unit vector e_i + share * e_j: cosine distance 1 - 1/sqrt(1 + share^2) from e_i."""
    v = _basis(i) + share * _basis(j)
    return v / np.linalg.norm(v)


def test_a_newcomer_about_as_near_two_recent_customers_is_a_new_customer():
    # Both within the embedding limit (0.13), 0.042 and 0.045 away: appearance has not said which
    # one it is, so neither continues (Lowe's ratio test, identity.distinct_ratio 0.8).
    gallery = CustomerGallery(IdentityConfig(memory_s=60))
    a, b = _customer(1, 0, 10, _toward(0, 1, 0.3)), _customer(2, 0, 10, _toward(0, 2, 0.31), x=140)
    gallery.remember(a)
    gallery.remember(b)
    assert gallery.find(_customer(3, 20, 20, _basis(0), x=120)) is None
    # clearly nearer one (0.030 against 0.045, ratio 0.67): it continues
    gallery.take(1)
    a = _customer(1, 0, 10, _toward(0, 1, 0.25))
    gallery.remember(a)
    found = gallery.find(_customer(3, 20, 20, _basis(0), x=120))
    assert found is not None and found[0] is a
    # the test off: the nearest continues however near the next one is
    gallery.take(1)
    gallery.remember(_customer(1, 0, 10, _toward(0, 1, 0.3)))
    off = CustomerGallery(IdentityConfig(memory_s=60, distinct_ratio=0))
    for customer in (gallery.take(1), gallery.take(2)):
        off.remember(customer)
    found = off.find(_customer(3, 20, 20, _basis(0), x=120))
    assert found is not None and found[0].id == 1


def test_a_return_in_place_is_not_refused_for_a_look_alike_elsewhere():
    # Lost half a second ago exactly where the newcomer appears: the place decides, even though a
    # customer who left elsewhere is as near in appearance.
    gallery = CustomerGallery(IdentityConfig(memory_s=60))
    here = _customer(1, 0, 10, _toward(0, 1, 0.3))
    gallery.remember(here)
    gallery.remember(_customer(2, 0, 9, _toward(0, 2, 0.3), x=400))
    found = gallery.find(_customer(3, 10.5, 10.5, _basis(0)))
    assert found is not None and found[0] is here
