import io
import logging
import warnings

from backend.protocol import decode_event
from backend.reporter import Reporter, forward_logs


def test_json_mode_writes_one_event_per_line():
    out, err = io.StringIO(), io.StringIO()
    reporter = Reporter(events=True, out=out, err=err)
    reporter.emit("started", algorithm="dbcr", tiles=3)
    reporter.emit("progress", done=1, total=3)
    reporter.log("warning", "careful")
    events = [decode_event(line) for line in out.getvalue().splitlines()]
    assert [event.kind for event in events] == ["started", "progress", "log"]
    assert events[2].get("level") == "warning" and err.getvalue() == ""


def test_text_mode_throttles_progress():
    out, err = io.StringIO(), io.StringIO()
    reporter = Reporter(events=False, out=out, err=err)
    for done in range(1, 101):
        reporter.emit("progress", done=done, total=100)
    lines = err.getvalue().splitlines()
    assert len(lines) == 11 and lines[0] == "  1/100 tiles (1%)" and lines[-1] == "  100/100 tiles (100%)"
    assert out.getvalue() == ""
    reporter.emit("error", code="bad_input", message="S1 and S2 do not overlap")
    assert err.getvalue().splitlines()[-1] == "Error: S1 and S2 do not overlap"


def test_adaptation_progress_counts_steps_not_tiles():
    err = io.StringIO()
    Reporter(events=False, out=io.StringIO(), err=err).emit("progress", done=6, total=60, phase="adapt")
    assert err.getvalue().splitlines() == ["  6/60 adaptation steps (10%)"]


def test_logs_and_warnings_are_forwarded_then_restored():
    out = io.StringIO()
    reporter = Reporter(events=True, out=out)
    logger = logging.getLogger("backend.sar")
    with forward_logs(reporter):
        logger.warning("S1 covers about %d%%", 40)
        logging.getLogger("backend").debug("not shown")
        warnings.warn("odd file", UserWarning, stacklevel=1)
    logger.warning("after the block")
    events = [decode_event(line) for line in out.getvalue().splitlines()]
    assert events[0].get("message") == "S1 covers about 40%" and events[0].get("level") == "warning"
    assert "odd file" in events[1].get("message")
    assert len(events) == 2
