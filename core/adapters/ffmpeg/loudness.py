"""Loudness to a target: the normaliser (a gain, then a limiter), the filter that measures,
and the gain a measurement calls for."""

from __future__ import annotations

from typing import Callable

from core.adapters.ffmpeg.describe import ebur128_summary
from core.domain.errors import MediaError
from core.domain.options import TRUE_PEAK_DBTP

LIMITER_MARGIN_DB = 1.0  # below TRUE_PEAK_DBTP, for the overshoot of MP3 encoding
LIMITER_RECHECK_DB = 3.0  # a deeper cut than this is measured again (it lowers the loudness)
MAX_CORRECTION_DB = 3.0


def normaliser(gain: float) -> str:
    """A linear gain, then a limiter a little under the true-peak ceiling: alimiter limits
    sample peaks, and MP3 encoding adds some inter-sample overshoot (LIMITER_MARGIN_DB)."""
    ceiling = 10 ** ((TRUE_PEAK_DBTP - LIMITER_MARGIN_DB) / 20)
    return f"volume={gain:.2f}dB,alimiter=limit={ceiling:.4f}:level=disabled:latency=1"


def measure_filter(gain: float | None) -> str:
    """ffmpeg's ebur128 filter, after `gain` through the normaliser if given."""
    measure = "ebur128=framelog=quiet:peak=sample"
    return measure if gain is None else f"{normaliser(gain)},{measure}"


def measured_loudness(stderr: str) -> tuple[float, float]:
    """(integrated loudness, sample peak) from a measuring run's stderr; MediaError when
    there is none or it is silence."""
    summary = ebur128_summary(stderr)
    if summary is None or not summary[0] > -70:  # silence: no gain reaches a target
        raise MediaError(MediaError.SILENT, f"no loudness measured ({summary})")
    return summary


def gain_to_target(
    target: float, measured: float, peak: float, measure_limited: Callable[[float], float]
) -> float:
    """The linear gain (dB) that brings audio measured at `measured` LUFS with `peak` dBFS to
    `target`. Only when the limiter would then cut peaks by more than LIMITER_RECHECK_DB (its
    cut lowers the loudness) is the gained, limited audio measured again (`measure_limited`),
    and the gain corrected once by what is missing."""
    gain = target - measured
    ceiling = TRUE_PEAK_DBTP - LIMITER_MARGIN_DB
    if peak + gain > ceiling + LIMITER_RECHECK_DB:
        limited = measure_limited(gain)
        gain += min(max(target - limited, 0.0), MAX_CORRECTION_DB)
    return gain
