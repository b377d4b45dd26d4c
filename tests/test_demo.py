"""The chapter 08 search app, driven in headless Chromium: a typed query must return pictures.

Starts `streamlit run demo/clip_search.py` (what `make demo` runs) on a free port,
opens it with Playwright in Debian's chromium (no browser download), types a
query, and checks the grid of found pictures and their cosine captions. Skipped
only when the chromium package is missing (.ci/run installs it).
"""

from __future__ import annotations

from streamlit_app import CHROMIUM, ROOT, app_fixture, browser_marks

pytestmark = browser_marks
app_url = app_fixture(ROOT / "demo" / "clip_search.py")


def test_a_typed_query_returns_pictures(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page()
            page.goto(app_url)
            box = page.get_by_label("Запрос")
            box.wait_for(timeout=120_000)  # the first run loads the model and encodes the gallery
            assert page.locator('[data-testid="stImage"] img').count() == 0
            box.fill("тройка на жёлтом фоне")
            box.press("Enter")
            page.get_by_text("«тройка на жёлтом фоне»").wait_for(timeout=60_000)
            pictures = page.locator('[data-testid="stImage"] img')
            pictures.nth(11).wait_for(timeout=60_000)
            assert pictures.count() == 12  # the slider's default k
            sources = [pictures.nth(i).get_attribute("src") for i in range(12)]
            assert all(src and "/media/" in src for src in sources), sources
            shown = pictures.first.evaluate("img => img.complete && img.naturalWidth")
            assert shown == 144, f"the first picture is not displayed at its width: {shown}"
            scores = [float(t) for t in page.locator('[data-testid="stImageCaption"]').all_inner_texts()]
            assert len(scores) == 12 and scores == sorted(scores, reverse=True), scores
            assert all(-1 <= s <= 1 for s in scores), scores
        finally:
            browser.close()
