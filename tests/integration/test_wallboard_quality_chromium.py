"""The wallboard's poor-quality tile in a real headless Chromium: the widest values it can
show ("100.0%", a grey tile with its reason) fit on every screen, with the other tiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_wallboard_chromium import READ_OVERFLOW, DevTools, _board_on_screen, chromium

__all__ = ["chromium"]  # the fixture, shared with the wallboard's own Chromium tests

REDRAW_QUALITY = """(async () => {
  const data = await (await fetch('/api/wallboard', {cache: 'no-store'})).json();
  data.queues.forEach((q, i) => {
    const t = q.tiles.poor_quality;
    t.value = i & 1 ? 1.0 : 0.333; t.status = i & 1 ? 'breach' : 'none';
    if (!(i & 1)) t.why = 'fewer than 10 calls';
  });
  renderQueues(data);
  const tiles = Array.from(document.querySelectorAll('.tile[data-kpi="poor_quality"]'));
  return {texts: tiles.map(el => el.querySelector('.value').textContent),
          notes: tiles.map(el => el.querySelector('.target').textContent),
          overflow: %s};
})()"""


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (1920, 1080), (3840, 2160)])
def test_the_quality_tile_fits_its_widest_values(width: int, height: int, tmp_path: Path, chromium: DevTools) -> None:
    with _board_on_screen(tmp_path, chromium, size=(width, height)):
        got = chromium.evaluate(REDRAW_QUALITY % READ_OVERFLOW.strip())
    assert got["texts"] == ["33.3%", "100.0%", "33.3%", "100.0%"], got
    assert got["notes"] == ["fewer than 10 calls", "target ≤ 10.0%", "fewer than 10 calls", "target ≤ 10.0%"], got
    assert not got["overflow"]["tiles"] and got["overflow"]["page"] <= width, got
    assert max(got["overflow"]["rows"]) <= 104 * width / 1920 + 1, got
