"""The table browser shows a table's file count and its last compaction."""

from __future__ import annotations

from datetime import datetime

from desktop_app.sql.table_browser import TableBrowser, compaction_text
from pipeline.sql.table_info import HISTORY_SCAN, Compaction, TableInfo


def test_browser_shows_file_count_and_last_compaction(qtbot):
    browser = TableBrowser()
    qtbot.addWidget(browser)
    browser.set_catalog({"logs": []})
    browser.select_table("logs")
    assert browser.current_table() == "logs"
    info = TableInfo(name="logs", columns=[], num_files=1234, version=812,
                     last_compaction=Compaction(version=790,
                                                timestamp=datetime(2026, 12, 3, 13, 5, 7),
                                                files_removed=61, files_added=1))
    browser.show_info(info, [])
    assert browser.info_labels["files"].text() == "1,234"
    assert browser.info_labels["compacted"].text() == \
        "2026-12-03 13:05:07 (version 790): 61 → 1 files"
    info.last_compaction = None
    browser.show_info(info, [])
    assert browser.info_labels["compacted"].text() == f"not in the last {HISTORY_SCAN} commits"


def test_compaction_text_without_metrics():
    c = Compaction(version=3, timestamp=datetime(2026, 1, 2, 3, 4, 5), files_removed=None,
                   files_added=None)
    assert compaction_text(c) == "2026-01-02 03:04:05 (version 3): ? → ? files"
