"""The chapter 12 text-to-image app, driven in headless Chromium: a typed caption must return generated pictures.

Starts `streamlit run demo/text_to_image.py` (what `make text2image` runs) on a free
port, opens it with Playwright in Debian's chromium, types a Russian caption and
checks the grid: the default number of pictures, each displayed, with CLIP cosines
in descending order; then a caption with a word outside the vocabulary must be
named in a warning. Skipped only when the chromium package is missing.
"""

from __future__ import annotations

from streamlit_app import CHROMIUM, ROOT, app_fixture, browser_marks

pytestmark = browser_marks
DEFAULT_COUNT = 8  # the app's slider default
app_url = app_fixture(ROOT / "demo" / "text_to_image.py")


def test_a_typed_caption_returns_generated_pictures(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page()
            page.goto(app_url)
            box = page.get_by_label("Подпись")
            box.wait_for(timeout=120_000)  # the first run loads the generator and CLIP
            assert page.locator('[data-testid="stImage"] img').count() == 0
            box.fill("большая тройка в центре на красном фоне")
            box.press("Enter")
            page.get_by_text("«большая тройка в центре на красном фоне»").wait_for(timeout=120_000)
            pictures = page.locator('[data-testid="stImage"] img')
            pictures.nth(DEFAULT_COUNT - 1).wait_for(timeout=60_000)
            assert pictures.count() == DEFAULT_COUNT
            sources = [pictures.nth(i).get_attribute("src") for i in range(DEFAULT_COUNT)]
            assert all(src and "/media/" in src for src in sources), sources
            shown = pictures.first.evaluate("img => img.complete && img.naturalWidth")
            assert shown == 144, f"the first picture is not displayed at its width: {shown}"
            scores = [float(t) for t in page.locator('[data-testid="stImageCaption"]').all_inner_texts()]
            assert len(scores) == DEFAULT_COUNT and scores == sorted(scores, reverse=True), scores
            assert all(-1 <= s <= 1 for s in scores), scores

            box.fill("тройка на бирюзовом фоне")
            box.press("Enter")
            page.get_by_text("«тройка на бирюзовом фоне»").wait_for(timeout=120_000)
            page.get_by_text("бирюзовом").first.wait_for(timeout=10_000)
            assert page.locator('[data-testid="stAlert"]').filter(has_text="бирюзовом").count() >= 1
        finally:
            browser.close()
