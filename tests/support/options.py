"""An audio option the description does not have (yet): what adding one to OPTIONS gives."""

from __future__ import annotations

from core.domain.options import OPTIONS, Option

FADE_IN = Option(
    "fade_in",
    "number",
    "Fade in",
    "fade the audio in over this long",
    minimum=0.0,
    maximum=10.0,
    unit="s",
    absent="no fade",
    formats=("mp3", "m4a"),
)
WITH_FADE_IN = (*OPTIONS, FADE_IN)
