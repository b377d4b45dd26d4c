"""The chapter 12 text-to-image app, driven in headless Chromium: a typed caption must return generated pictures.

Starts `streamlit run demo/text_to_image.py` (what `make text2image` runs) on a free
port, opens it with Playwright in Debian's chromium, types a Russian caption and
checks the grid: the default number of pictures, each displayed, with CLIP cosines
in descending order; then a caption with a word outside the vocabulary must be
named in a warning. Skipped only when the chromium package is missing.
"""

from __future__ import annotations

from streamlit_app import ROOT, app_fixture, app_page, browser_marks, check_ranked_grid

pytestmark = browser_marks
DEFAULT_COUNT = 8  # the app's slider default
app_url = app_fixture(ROOT / "demo" / "text_to_image.py")


def test_a_typed_caption_returns_generated_pictures(app_url):
    with app_page(app_url) as page:
        box = page.get_by_label("Подпись")
        box.wait_for(timeout=120_000)  # the first run loads the generator and CLIP
        assert page.locator('[data-testid="stImage"] img').count() == 0
        check_ranked_grid(page, box, "большая тройка в центре на красном фоне", DEFAULT_COUNT, timeout_ms=120_000)

        box.fill("тройка на бирюзовом фоне")
        box.press("Enter")
        page.get_by_text("«тройка на бирюзовом фоне»").wait_for(timeout=120_000)
        page.get_by_text("бирюзовом").first.wait_for(timeout=10_000)
        assert page.locator('[data-testid="stAlert"]').filter(has_text="бирюзовом").count() >= 1
