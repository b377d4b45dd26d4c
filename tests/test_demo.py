"""The chapter 08 search app, driven in headless Chromium: a typed query must return pictures.

Starts `streamlit run demo/clip_search.py` (what `make demo` runs) on a free port,
opens it with Playwright in Debian's chromium (no browser download), types a
query, and checks the grid of found pictures and their cosine captions. Skipped
only when the chromium package is missing (.ci/run installs it).
"""

from __future__ import annotations

from streamlit_app import ROOT, app_fixture, app_page, browser_marks, check_ranked_grid

pytestmark = browser_marks
app_url = app_fixture(ROOT / "demo" / "clip_search.py")


def test_a_typed_query_returns_pictures(app_url):
    with app_page(app_url) as page:
        box = page.get_by_label("Запрос")
        box.wait_for(timeout=120_000)  # the first run loads the model and encodes the gallery
        assert page.locator('[data-testid="stImage"] img').count() == 0
        check_ranked_grid(page, box, "тройка на жёлтом фоне", count=12)  # the slider's default k
