"""TEST_TIME_SCALE: the one setting that stretches every test deadline on a busy machine."""

import pytest

from tests.support import wait


@pytest.mark.parametrize("raw", ["0", "-1", "three", "", "inf", "nan"])
def test_a_scale_that_is_not_a_positive_number_stops_the_run_naming_it(raw):
    with pytest.raises(ValueError, match="TEST_TIME_SCALE must be a number above 0"):
        wait._time_scale(raw)


def test_the_scale_stretches_the_deadline_a_failure_reports(monkeypatch):
    monkeypatch.setattr(wait, "TIME_SCALE", wait._time_scale("2.5"))
    assert wait.scaled(4) == 10
    with pytest.raises(AssertionError, match="timed out after 0.05 s waiting for nothing"):
        wait.wait_for(lambda: None, timeout=0.02, interval=0.01, what="nothing")
