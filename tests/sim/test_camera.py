"""Camera: rendered pixels against an independent pinhole projection of known world points."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
import shapely
from shapely.geometry import MultiPoint

from race_server.sim.camera import (
    CAMERA_MOUNT_FORWARD,
    CAMERA_MOUNT_HEIGHT,
    Camera,
    DomainRandomization,
    StereoCamera,
    track_texture,
)
from race_server.sim.objects import BOT_HEIGHT, BOT_LENGTH, BOT_WIDTH, BOX_HEIGHT, BOX_LENGTH, BOX_WIDTH, Box
from race_server.sim.texture import (
    BORDER_GREY,
    CENTRE_DASH_OFF,
    CENTRE_DASH_ON,
    CENTRE_GREY,
    FIELD_GREY,
    ROAD_GREY,
    SKY_GREY,
)
from race_server.sim.tracks import Track, load_track

W, H = 160, 120
HFOV = 1.13
PITCH_DOWN = 0.2618
FOCAL = (W / 2) / math.tan(HFOV / 2)


def project(
    point: tuple[float, float, float], car: tuple[float, float, float], lateral: float = 0.0
) -> tuple[float, float, float]:
    """Pinhole projection written out from the model: -> (column, row, depth along the optical axis)."""
    px, py, pz = point
    cx, cy, yaw = car
    c, s = math.cos(yaw), math.sin(yaw)
    lens_x = cx + CAMERA_MOUNT_FORWARD * c - lateral * s
    lens_y = cy + CAMERA_MOUNT_FORWARD * s + lateral * c
    dx, dy, dz = px - lens_x, py - lens_y, pz - CAMERA_MOUNT_HEIGHT
    forward = c * dx + s * dy
    left = -s * dx + c * dy
    depth = forward * math.cos(PITCH_DOWN) - dz * math.sin(PITCH_DOWN)
    up = forward * math.sin(PITCH_DOWN) + dz * math.cos(PITCH_DOWN)
    return (W / 2 - 0.5 - FOCAL * left / depth, H / 2 - 0.5 - FOCAL * up / depth, depth)


def pixel(image: npt.NDArray[np.uint8], point: tuple[float, float, float], car: tuple[float, float, float]) -> int:
    col, row, depth = project(point, car)
    assert depth > 0
    r, c = round(row), round(col)
    assert 0 <= r < H and 0 <= c < W, (point, row, col)
    return int(image[r, c])


@pytest.fixture(scope="module")
def track() -> Track:
    return load_track("reinvent_base")


@pytest.fixture(scope="module")
def camera(track: Track) -> Camera:
    return Camera(track, mount_forward=CAMERA_MOUNT_FORWARD, mount_height=CAMERA_MOUNT_HEIGHT)


def _straight_y(polyline: npt.NDArray[np.float64], x: float) -> float:
    """y of a polyline along reinvent_base's first straight (rows 0-18 run in +x)."""
    return float(np.interp(x, polyline[:19, 0], polyline[:19, 1]))


def _ground_point_on_row(
    curve: Callable[[float], float], row: int, car: tuple[float, float, float], lo: float, hi: float
) -> float | None:
    """x of the point (x, curve(x), 0) that projects onto the centre of pixel row ``row`` (bisection)."""

    def row_of(px: float) -> float:
        return project((px, curve(px), 0.0), car)[1]

    if not row_of(hi) <= row <= row_of(lo):  # rows shrink towards the horizon
        return None
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if row_of(mid) > row else (lo, mid)
    return (lo + hi) / 2


def test_track_lines_appear_where_the_pinhole_model_puts_them(track: Track, camera: Camera) -> None:
    x, y, heading = track.pose_at(0.3, 0.05)
    car = (x, y, heading + 0.05)  # slightly turned and off-centre, so rotation matters
    image = camera.render(*car, [])
    lens_x = x + CAMERA_MOUNT_FORWARD * math.cos(car[2])

    def along(polyline: npt.NDArray[np.float64], shift: float) -> Callable[[float], float]:
        return lambda px: _straight_y(polyline, px) + shift

    curves = [
        (along(track.inner_border, 0.0), BORDER_GREY),  # inner border is on the left (y larger)
        (along(track.outer_border, 0.0), BORDER_GREY),
        (along(track.inner_border, -0.10), ROAD_GREY),  # just inside the lines
        (along(track.outer_border, 0.10), ROAD_GREY),
        (along(track.waypoints, 0.19), ROAD_GREY),  # lane centres
        (along(track.waypoints, -0.19), ROAD_GREY),
        (along(track.inner_border, 0.12), FIELD_GREY),  # just outside the lines
        (along(track.outer_border, -0.12), FIELD_GREY),
    ]
    counts = {BORDER_GREY: 0, ROAD_GREY: 0, FIELD_GREY: 0}
    for curve, expected in curves:
        for row in range(H):
            px = _ground_point_on_row(curve, row, car, lens_x + 0.5, lens_x + 2.2)
            if px is None:
                continue
            col = project((px, curve(px), 0.0), car)[0]
            if 0 <= round(col) < W:
                assert image[row, round(col)] == expected, (row, col, px, expected)
                counts[expected] += 1
    assert counts[BORDER_GREY] >= 30 and counts[ROAD_GREY] >= 60 and counts[FIELD_GREY] >= 20, counts


def test_dashed_centre_line_paint_and_gaps(track: Track, camera: Camera) -> None:
    # dash and gap centres, checked within 1 m where a pixel row covers < 7 cm of ground lengthwise
    period = CENTRE_DASH_ON + CENTRE_DASH_OFF
    x0 = float(track.waypoints[0, 0])  # arc length along the straight ~= x - x0
    painted = gaps = 0
    for start in np.arange(0.1, 0.7, 0.1):
        x, y, heading = track.pose_at(float(start))
        car = (x, y, heading)
        image = camera.render(*car, [])
        for k in range(10):
            for offset, expected in (
                (CENTRE_DASH_ON / 2, CENTRE_GREY),
                (CENTRE_DASH_ON + CENTRE_DASH_OFF / 2, ROAD_GREY),
            ):
                px = x0 + k * period + offset
                ahead = px - (x + CAMERA_MOUNT_FORWARD * math.cos(heading))
                if not 0.35 <= ahead <= 1.0:
                    continue
                assert pixel(image, (px, _straight_y(track.waypoints, px), 0.0), car) == expected
                painted += expected == CENTRE_GREY
                gaps += expected == ROAD_GREY
    assert painted >= 8 and gaps >= 8


def test_sky_above_the_horizon_only(track: Track, camera: Camera) -> None:
    x, y, heading = track.pose_at(1.0)
    image = camera.render(x, y, heading, [])
    horizon = H / 2 - 0.5 - FOCAL * math.tan(PITCH_DOWN)  # row of a level ray
    assert (image[: math.floor(horizon) + 1] == SKY_GREY).all()
    assert (image[math.ceil(horizon) :] != SKY_GREY).all()


def _hull(
    points: list[tuple[float, float, float]], car: tuple[float, float, float], lateral: float = 0.0
) -> shapely.Polygon:
    projected = [project(p, car, lateral)[:2] for p in points]
    hull = MultiPoint(projected).convex_hull
    assert isinstance(hull, shapely.Polygon)
    return hull


def _box_corners(box: Box) -> list[tuple[float, float, float]]:
    c, s = math.cos(box.yaw), math.sin(box.yaw)
    out = []
    for ex, ey in ((1, 1), (-1, 1), (-1, -1), (1, -1)):
        px = box.x + c * ex * box.length / 2 - s * ey * box.width / 2
        py = box.y + s * ex * box.length / 2 + c * ey * box.width / 2
        out += [(px, py, 0.0), (px, py, box.height)]
    return out


def _pixel_centres() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    rows, cols = np.mgrid[0:H, 0:W]
    return cols.ravel().astype(np.float64), rows.ravel().astype(np.float64)


def _box_ahead(track: Track, car: tuple[float, float, float], front: float, is_bot: bool = False) -> Box:
    """Box (or bot) on the car's axis whose near face is ``front`` metres ahead of the lens."""
    x, y, yaw = car
    length, width, height = (BOT_LENGTH, BOT_WIDTH, BOT_HEIGHT) if is_bot else (BOX_LENGTH, BOX_WIDTH, BOX_HEIGHT)
    d = CAMERA_MOUNT_FORWARD + front + length / 2
    return Box(x + d * math.cos(yaw), y + d * math.sin(yaw), yaw, length, width, height, is_bot=is_bot)


def test_box_ahead_covers_its_projection_and_hides_the_road(track: Track, camera: Camera) -> None:
    x, y, heading = track.pose_at(0.3)
    car = (x, y, heading + 0.03)
    box = _box_ahead(track, car, 1.2)
    plain = camera.render(*car, [])
    image = camera.render(*car, [box])
    hull = _hull(_box_corners(box), car)
    cols, rows = _pixel_centres()
    inside = shapely.contains_xy(hull.buffer(-1.0), cols, rows).reshape(H, W)
    near = shapely.contains_xy(hull.buffer(1.0), cols, rows).reshape(H, W)
    assert inside.sum() > 500
    # every pixel well inside the silhouette shows the box's one visible face...
    face = np.unique(image[inside])
    assert len(face) == 1 and int(face[0]) not in (ROAD_GREY, CENTRE_GREY, BORDER_GREY, FIELD_GREY, SKY_GREY)
    # ...where the empty track showed road and the centre line behind it
    assert np.isin(plain[inside], (ROAD_GREY, CENTRE_GREY)).sum() > 300
    # and nothing outside the silhouette changed
    assert np.array_equal(image[~near], plain[~near])


def _face_region(corners: list[tuple[float, float, float]], car: tuple[float, float, float]) -> npt.NDArray[np.bool_]:
    cols, rows = _pixel_centres()
    inside: npt.NDArray[np.bool_] = shapely.contains_xy(_hull(corners, car).buffer(-1.0), cols, rows)
    return inside.reshape(H, W)


def test_turned_box_shows_two_shaded_sides(track: Track, camera: Camera) -> None:
    x, y, heading = track.pose_at(0.3)
    car = (x, y, heading)
    ahead = _box_ahead(track, car, 1.0)
    box = Box(ahead.x, ahead.y, heading + math.radians(40), BOX_LENGTH, BOX_WIDTH, BOX_HEIGHT)
    image = camera.render(*car, [box])
    corners = _box_corners(box)  # (+x+y bottom, top), (-x+y ...), (-x-y ...), (+x-y ...)
    # turned 40 degrees left, the box shows the lens its -x end and its +y side
    near_x_face = corners[2:6]  # corners -x+y and -x-y
    near_y_face = corners[0:4]  # corners +x+y and -x+y
    a = np.unique(image[_face_region(near_x_face, car)])
    b = np.unique(image[_face_region(near_y_face, car)])
    assert len(a) == 1 and len(b) == 1 and a[0] != b[0]
    assert set(np.unique(image[_face_region(corners, car)])) == {a[0], b[0]}


def test_low_box_shows_its_top_from_above(track: Track, camera: Camera) -> None:
    x, y, heading = track.pose_at(0.3)
    car = (x, y, heading)
    ahead = _box_ahead(track, car, 0.8)
    low = Box(ahead.x, ahead.y, heading, BOX_LENGTH, BOX_WIDTH, 0.06)
    image = camera.render(*car, [low])
    corners = _box_corners(low)
    top = [corners[i] for i in (1, 3, 5, 7)]
    front = corners[2:6]
    top_grey = np.unique(image[_face_region(top, car)])
    front_grey = np.unique(image[_face_region(front, car)])
    assert len(top_grey) == 1 and len(front_grey) == 1 and top_grey[0] > front_grey[0]  # the top faces the light
    assert set(np.unique(image[_face_region(corners, car)])) == {top_grey[0], front_grey[0]}


def test_box_behind_or_beside_the_car_is_not_drawn(track: Track, camera: Camera) -> None:
    x, y, heading = track.pose_at(1.0)
    car = (x, y, heading)
    c, s = math.cos(heading), math.sin(heading)
    behind = Box(x - 0.8 * c, y - 0.8 * s, heading, BOX_LENGTH, BOX_WIDTH, BOX_HEIGHT)
    beside = Box(x + 0.3 * c - 1.5 * s, y + 0.3 * s + 1.5 * c, heading, BOX_LENGTH, BOX_WIDTH, BOX_HEIGHT)
    plain = camera.render(*car, [])
    assert np.array_equal(camera.render(*car, [behind, beside]), plain)


def test_nearer_object_occludes_farther_one_whatever_the_list_order(track: Track, camera: Camera) -> None:
    x, y, heading = track.pose_at(0.3)
    car = (x, y, heading)
    box = _box_ahead(track, car, 1.2)
    bot = _box_ahead(track, car, 2.0, is_bot=True)
    only_box = camera.render(*car, [box])
    only_bot = camera.render(*car, [bot])
    assert not np.array_equal(only_bot, camera.render(*car, []))  # the bot alone is visible
    assert np.array_equal(camera.render(*car, [box, bot]), only_box)  # and hidden behind the box
    assert np.array_equal(camera.render(*car, [bot, box]), only_box)
    # a bot nearer than the box hides part of it instead
    near_bot = _box_ahead(track, car, 0.6, is_bot=True)
    both = camera.render(*car, [box, near_bot])
    hull = _hull(_box_corners(near_bot), car)
    cols, rows = _pixel_centres()
    inside = shapely.contains_xy(hull.buffer(-1.0), cols, rows).reshape(H, W)
    assert np.array_equal(both[inside], camera.render(*car, [near_bot])[inside])


def _edge_row_solution(front: float, half_width: float, lateral: float, row: float) -> tuple[float, float]:
    """(expected column, depth) of the box's left front vertical edge at pixel row ``row``."""
    p = PITCH_DOWN
    k = (H / 2 - 0.5 - row) / FOCAL
    w = front * (k * math.cos(p) - math.sin(p)) / (math.cos(p) + k * math.sin(p))  # height rel. to lens
    depth = front * math.cos(p) - w * math.sin(p)
    return W / 2 - 0.5 - FOCAL * (half_width - lateral) / depth, depth


def test_stereo_disparity_matches_baseline_over_depth(track: Track) -> None:
    stereo = StereoCamera(track, mount_forward=CAMERA_MOUNT_FORWARD, mount_height=CAMERA_MOUNT_HEIGHT)
    x, y, heading = track.pose_at(0.3)
    car = (x, y, heading)
    for front in (0.8, 1.0, 1.5):
        box = _box_ahead(track, car, front)
        frames = stereo.render(*car, [box])
        empty = stereo.render(*car, [])
        assert frames.shape == (H, W, 2) and frames.dtype == np.uint8
        for row in (30, 36):
            measured = []
            for channel, lateral in ((0, 0.03), (1, -0.03)):
                changed = np.flatnonzero(frames[row, :, channel] != empty[row, :, channel])
                expected, depth = _edge_row_solution(front, BOX_WIDTH / 2, lateral, row)
                assert abs(changed[0] - expected) <= 1.0, (front, row, channel, changed[0], expected)
                measured.append(int(changed[0]))
            disparity = measured[0] - measured[1]
            assert abs(disparity - FOCAL * 0.06 / depth) <= 1.0, (front, row, disparity)
            assert disparity > 0  # the left lens sees things further right


def test_stereo_channels_are_left_then_right_lens(track: Track, camera: Camera) -> None:
    stereo = StereoCamera(track)
    x, y, heading = track.pose_at(5.0, 0.1)
    frames = stereo.render(x, y, heading + 0.2, [])
    assert np.array_equal(frames[:, :, 0], camera.render(x, y, heading + 0.2, [], lateral=0.03))
    assert np.array_equal(frames[:, :, 1], camera.render(x, y, heading + 0.2, [], lateral=-0.03))
    assert not np.array_equal(frames[:, :, 0], frames[:, :, 1])


def test_project_agrees_with_the_pinhole_model(track: Track, camera: Camera) -> None:
    car = (3.5, 0.7, 0.3)
    pts = np.array([[4.5, 1.0, 0.0], [5.0, 0.2, 0.2], [4.2, 0.9, 0.1]])
    uv, depth = camera.project(pts, *car, lateral=0.03)
    for p, (u, v), d in zip(pts, uv, depth, strict=True):
        eu, ev, ed = project((float(p[0]), float(p[1]), float(p[2])), car, 0.03)
        assert (u, v, d) == pytest.approx((eu, ev, ed))


def test_rendering_is_deterministic(track: Track) -> None:
    boxes = [
        Box(4.4, 0.9, 0.1, BOX_LENGTH, BOX_WIDTH, BOX_HEIGHT),
        Box(5.2, 0.5, 0.0, BOT_LENGTH, BOT_WIDTH, BOT_HEIGHT, True),
    ]
    a = Camera(track, mount_forward=CAMERA_MOUNT_FORWARD, mount_height=CAMERA_MOUNT_HEIGHT)
    b = Camera(track, mount_forward=CAMERA_MOUNT_FORWARD, mount_height=CAMERA_MOUNT_HEIGHT)
    for pose in [(3.3, 0.7, 0.0), (6.5, 1.5, 1.2), (2.0, 2.6, -2.0)]:
        first = a.render(*pose, boxes)
        a.render(pose[0] + 1.0, pose[1], pose[2], boxes)  # buffers are reused between frames
        assert first.tobytes() == a.render(*pose, boxes).tobytes() == b.render(*pose, boxes).tobytes()


def test_domain_randomization_is_driven_by_the_rng(track: Track, camera: Camera) -> None:
    dr = DomainRandomization(brightness=0.3, noise_std=4.0, texture_jitter=0.02)
    noisy = Camera(track, mount_forward=CAMERA_MOUNT_FORWARD, mount_height=CAMERA_MOUNT_HEIGHT, randomization=dr)
    pose = (3.4, 0.7, 0.05)
    clean = camera.render(*pose, [])
    assert np.array_equal(noisy.render(*pose, []), clean)  # no rng: no perturbation
    one = noisy.render(*pose, [], rng=np.random.default_rng(1))
    again = noisy.render(*pose, [], rng=np.random.default_rng(1))
    other = noisy.render(*pose, [], rng=np.random.default_rng(2))
    assert np.array_equal(one, again)
    assert not np.array_equal(one, other)
    assert not np.array_equal(one, clean)
    assert abs(float(one.mean()) - float(clean.mean())) <= 0.3 * float(clean.mean()) + 2.0


@pytest.mark.parametrize("field", ["brightness", "noise_std", "texture_jitter"])
def test_domain_randomization_validation(field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        DomainRandomization(**{field: -1.0})


@pytest.mark.parametrize(
    ("route", "reverse"), [("reinvent_base", False), ("Straight_track", False), ("reInvent2019_track", True)]
)
def test_texture_road_matches_the_road_polygon(route: str, reverse: bool) -> None:
    track = load_track(route, reverse)
    texture = track_texture(track)
    rng = np.random.default_rng(0)
    corners = np.vstack([track.inner_border, track.outer_border])
    points = rng.uniform(corners.min(axis=0) - 0.5, corners.max(axis=0) + 0.5, size=(4000, 2))
    # painted lines cover the road edges and the centre: compare the fill only away from them
    lines = [shapely.LineString(p) for p in (track.inner_border, track.outer_border, track.waypoints)]
    clear = np.min([shapely.distance(line, shapely.points(points)) for line in lines], axis=0) > 0.04
    points = points[clear]
    grey = texture.sample(points[:, 0], points[:, 1])
    inside = track.contains(points)
    assert inside.sum() > 100 and (~inside).sum() > 100
    assert np.array_equal(grey[inside], np.full(inside.sum(), ROAD_GREY))
    assert np.array_equal(grey[~inside], np.full((~inside).sum(), FIELD_GREY))
