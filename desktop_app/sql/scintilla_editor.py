"""A thin adapter over pyside6-scintilla's ``ScintillaEdit`` for SQL editing.

Everything the workbench needs goes through this class, with positions as *character*
offsets (Scintilla counts UTF-8 bytes): text, selection, cursor, error marks, comment
toggling and autocompletion. Key bindings: Ctrl+Enter run statement, Ctrl+Shift+Enter run
all, Esc cancel, Ctrl+/ toggle comment, Ctrl+Space complete.
"""

from __future__ import annotations

from collections.abc import Iterable

import lexilla
from lexilla.pyside6_scintilla import set_lexer
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QKeyEvent
from pyside6_scintilla import ScintillaEdit

SQL_KEYWORDS = (
    "select from where group by order having limit offset join inner left right full outer "
    "cross semi anti on using as and or not in is null like rlike ilike between case when then "
    "else end distinct all union intersect except minus with asc desc nulls first last true "
    "false interval cast exists any some over partition window rows range preceding following "
    "unbounded current row lateral view explode describe show tables columns explain formatted "
    "extended history detail version timestamp of values table tablesample pivot unpivot qualify"
)
SPARK_FUNCTIONS = (
    "abs approx_count_distinct array array_contains avg ceil coalesce collect_list collect_set "
    "concat concat_ws count count_if date_add date_format date_sub date_trunc datediff day "
    "dayofweek dense_rank element_at exp explode first floor from_json from_unixtime "
    "get_json_object greatest hour if ifnull initcap instr isnull lag last lead least length "
    "lower lpad ltrim max mean median min minute mod month now ntile nullif nvl "
    "percentile percentile_approx pow rank regexp_extract regexp_replace round row_number rpad "
    "rtrim second size split sqrt stddev struct substr substring sum to_date to_json "
    "to_timestamp trim trunc unix_timestamp upper variance window year"
)

# LexSQL style numbers (SCE_SQL_*)
_STYLES = {
    1: 0x6A9955, 2: 0x6A9955, 3: 0x6A9955, 13: 0x6A9955,  # comments
    4: 0xB5CEA8,  # number
    5: 0x569CD6,  # keyword
    6: 0xCE9178, 7: 0xCE9178,  # strings
    10: 0xD4D4D4,  # operator
    16: 0xDCDCAA,  # function (keyword set 2)
    22: 0x9CDCFE,  # `quoted identifier`
}
_INDICATOR_ERROR = 8
_INDIC_SQUIGGLE = 1
_SC_MARGIN_NUMBER = 1
_ANNOTATION_BOXED = 2
_STYLE_DEFAULT = 32
_STYLE_LINENUMBER = 33
_STYLE_BRACELIGHT = 34
_STYLE_BRACEBAD = 35
_ANNOTATION_STYLE = 40


def _bgr(rgb: int) -> int:
    """Scintilla colours are 0xBBGGRR."""
    return ((rgb & 0xFF) << 16) | (rgb & 0xFF00) | ((rgb >> 16) & 0xFF)


class SqlEditor(ScintillaEdit):
    """The SQL editor widget (Scintilla + Lexilla's SQL lexer)."""

    runStatementRequested = Signal()
    runAllRequested = Signal()
    cancelRequested = Signal()

    def __init__(self, parent=None, dark: bool = True) -> None:
        super().__init__(parent)
        self._completion_words: list[str] = []
        self._columns: list[str] = []
        self._tables: list[str] = []
        self.setCodePage(65001)
        set_lexer(self, lexilla.create_lexer("sql"))
        self.setKeyWords(0, SQL_KEYWORDS)
        self.setKeyWords(1, SPARK_FUNCTIONS)
        self._apply_theme(dark)
        self.setMarginTypeN(0, _SC_MARGIN_NUMBER)
        self.setMarginWidthN(0, 44)
        self.setMarginWidthN(1, 0)
        self.setTabWidth(4)
        self.setUseTabs(False)
        self.indicSetStyle(_INDICATOR_ERROR, _INDIC_SQUIGGLE)
        self.send(2082, _INDICATOR_ERROR, _bgr(0xF44747))  # SCI_INDICSETFORE
        self.annotationSetVisible(_ANNOTATION_BOXED)
        self.autoCSetIgnoreCase(True)
        self.send(2118, 1)  # SCI_AUTOCSETAUTOHIDE
        self.send(2660, 1)  # SCI_AUTOCSETORDER = SC_ORDER_PERFORMSORT
        self.charAdded.connect(self._on_char_added)
        self.updateUi.connect(self._match_braces)

    # -- look ----------------------------------------------------------------------------
    def _apply_theme(self, dark: bool) -> None:
        fg, bg = (0xD4D4D4, 0x1E1E1E) if dark else (0x1E1E1E, 0xFFFFFF)
        font = QFont("Monospace")
        font.setStyleHint(QFont.StyleHint.TypeWriter)
        self.styleSetFont(_STYLE_DEFAULT, font.family())
        self.styleSetSize(_STYLE_DEFAULT, 10)
        self.styleSetFore(_STYLE_DEFAULT, _bgr(fg))
        self.styleSetBack(_STYLE_DEFAULT, _bgr(bg))
        self.styleClearAll()
        for style, colour in _STYLES.items():
            self.styleSetFore(style, _bgr(colour if dark else (colour ^ 0x7F7F7F) & 0xFFFFFF))
        self.styleSetBold(5, True)
        self.styleSetFore(_STYLE_LINENUMBER, _bgr(0x858585))
        self.styleSetBack(_STYLE_LINENUMBER, _bgr(0x252526 if dark else 0xF0F0F0))
        self.styleSetFore(_STYLE_BRACELIGHT, _bgr(0xFFD700))
        self.styleSetBold(_STYLE_BRACELIGHT, True)
        self.styleSetFore(_STYLE_BRACEBAD, _bgr(0xF44747))
        self.styleSetFore(_ANNOTATION_STYLE, _bgr(0xF44747))
        self.styleSetBack(_ANNOTATION_STYLE, _bgr(0x3A1D1D if dark else 0xFDECEC))
        self.setCaretFore(_bgr(fg))

    # -- text and positions (character offsets) ----------------------------------------
    def text(self) -> str:
        n = self.textLength()
        return bytes(self.getText(n + 1))[:n].decode("utf-8", errors="replace")

    def set_text(self, text: str) -> None:
        self.setText(text)
        self.clear_error()

    def _to_char(self, byte_pos: int) -> int:
        return len(bytes(self.textRange(0, byte_pos)).decode("utf-8", errors="replace"))

    def _to_byte(self, char_pos: int) -> int:
        return len(self.text()[:char_pos].encode("utf-8"))

    def cursor_position(self) -> int:
        return self._to_char(self.currentPos())

    def set_cursor_position(self, pos: int) -> None:
        self.gotoPos(self._to_byte(pos))

    def selected_text(self) -> str:
        return bytes(self.getSelText()).rstrip(b"\0").decode("utf-8", errors="replace")

    def selection_range(self) -> tuple[int, int]:
        return self._to_char(self.selectionStart()), self._to_char(self.selectionEnd())

    def insert_at_cursor(self, text: str) -> None:
        self.replaceSel(text)

    # -- errors --------------------------------------------------------------------------
    def mark_error(self, line: int, column: int | None, message: str) -> None:
        """Squiggle the token at 1-based (line, column) and annotate the line."""
        self.clear_error()
        line0 = max(0, min(line - 1, self.lineCount() - 1))
        start = self.findColumn(line0, max(0, (column or 1) - 1))
        end = self.send(2267, start, 1)  # SCI_WORDENDPOSITION
        line_end = self.send(2136, line0)  # SCI_GETLINEENDPOSITION
        if end <= start:
            end = min(start + 1, line_end) if line_end > start else start + 1
        self.setIndicatorCurrent(_INDICATOR_ERROR)
        self.indicatorFillRange(start, max(1, end - start))
        self.annotationSetText(line0, message)
        self.send(2542, line0, _ANNOTATION_STYLE)  # SCI_ANNOTATIONSETSTYLE
        self.gotoPos(start)
        self._error_line = line0

    def clear_error(self) -> None:
        self.setIndicatorCurrent(_INDICATOR_ERROR)
        self.indicatorClearRange(0, self.length())
        self.annotationClearAll()
        self._error_line = None

    def error_marked(self) -> tuple[int, int] | None:
        """(start, end) character range of the error squiggle, or None."""
        pos = self.send(2509, _INDICATOR_ERROR, 0)  # SCI_INDICATOREND from 0
        start = 0 if self.send(2507, _INDICATOR_ERROR, 0) else pos  # SCI_INDICATORVALUEAT
        if start >= self.length():
            return None
        end = self.send(2509, _INDICATOR_ERROR, start)
        return self._to_char(start), self._to_char(end)

    # -- comments ------------------------------------------------------------------------
    def toggle_comment(self) -> None:
        """Comment out the selected lines with ``-- ``, or uncomment them if all are."""
        first = self.lineFromPosition(self.selectionStart())
        last = self.lineFromPosition(self.selectionEnd())
        if last > first and self.selectionEnd() == self.positionFromLine(last):
            last -= 1
        lines = range(first, last + 1)
        texts = [bytes(self.textRange(self.positionFromLine(n),
                                      self.send(2136, n))).decode("utf-8") for n in lines]
        commented = all(t.lstrip().startswith("--") or not t.strip() for t in texts)
        self.beginUndoAction()
        try:
            for n, t in zip(lines, texts, strict=True):
                if not t.strip():
                    continue
                start = self.positionFromLine(n)
                indent = len(t) - len(t.lstrip())
                if commented:
                    body = t.lstrip()
                    cut = 3 if body.startswith("-- ") else 2
                    pos = start + len(t[:indent].encode("utf-8"))
                    self.setTargetRange(pos, pos + cut)
                    self.replaceTarget(0, "")  # length of the replacement text
                else:
                    self.insertText(start + len(t[:indent].encode("utf-8")), "-- ")
        finally:
            self.endUndoAction()

    # -- completion ----------------------------------------------------------------------
    def set_completions(self, tables: Iterable[str], columns: Iterable[str]) -> None:
        self._tables = sorted(set(tables))
        self._columns = sorted(set(columns))
        words = set(self._tables) | set(self._columns)
        words |= {k.upper() for k in SQL_KEYWORDS.split()}
        words |= set(SPARK_FUNCTIONS.split())
        self._completion_words = sorted(words, key=str.lower)

    def completion_candidates(self, prefix: str) -> list[str]:
        p = prefix.lower()
        return [w for w in self._completion_words if w.lower().startswith(p) and w != prefix]

    def show_completions(self) -> list[str]:
        """Pop up the completion list for the word before the cursor; return what it holds."""
        pos = self.currentPos()
        start = self.wordStartPosition(pos, True)
        prefix = bytes(self.textRange(start, pos)).decode("utf-8", errors="replace")
        items = self.completion_candidates(prefix)
        if items:
            self.autoCShow(len(prefix.encode("utf-8")), " ".join(items))
        return items

    def _on_char_added(self, ch: int) -> None:
        if chr(ch).isalnum() or chr(ch) == "_":
            pos = self.currentPos()
            if pos - self.wordStartPosition(pos, True) >= 2 and not self.autoCActive():
                self.show_completions()

    def _match_braces(self, *_args) -> None:
        pos = self.currentPos()
        for p in (pos - 1, pos):
            if 0 <= p < self.length() and chr(self.charAt(p)) in "()[]{}":
                other = self.braceMatch(p, 0)
                if other >= 0:
                    self.braceHighlight(p, other)
                else:
                    self.braceBadLight(p)
                return
        self.braceHighlight(-1, -1)

    # -- keys ----------------------------------------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        key, mods = event.key(), event.modifiers()
        ctrl = bool(mods & Qt.KeyboardModifier.ControlModifier)
        if ctrl and key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if mods & Qt.KeyboardModifier.ShiftModifier:
                self.runAllRequested.emit()
            else:
                self.runStatementRequested.emit()
            event.accept()
            return
        if key == Qt.Key.Key_Escape and not self.autoCActive():
            self.cancelRequested.emit()
            event.accept()
            return
        if ctrl and key == Qt.Key.Key_Slash:
            self.toggle_comment()
            event.accept()
            return
        if ctrl and key == Qt.Key.Key_Space:
            self.show_completions()
            event.accept()
            return
        super().keyPressEvent(event)
