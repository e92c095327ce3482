"""Real media for the TTA emulator: speech-like PCM, an animated avatar as H.264, muxed files.

One module per concern: :mod:`.timing` (how long text takes to say), :mod:`.speech`
(speech-like PCM), :mod:`.avatar` (drawing the avatar), :mod:`.encoders` (H.264/VPX and
cheap pre-encoded loops) and :mod:`.session` (:class:`MediaSession`, the production
session), and :mod:`.clips` (cheap real training videos). The names below are the
package's public surface.
"""

from avatarkit.emulator.media.clips import still_clip
from avatarkit.emulator.media.encoders import pad_access_unit
from avatarkit.emulator.media.session import MediaSession
from avatarkit.emulator.media.speech import pcm_rms, synth_speech
from avatarkit.emulator.media.timing import (
    AUDIO_BYTES_PER_FRAME,
    FPS,
    FRAME_MS,
    SAMPLE_RATE,
    plain_text,
    sentence_timings,
    speech_duration_ms,
    split_sentences,
)

__all__ = [
    "AUDIO_BYTES_PER_FRAME",
    "FPS",
    "FRAME_MS",
    "SAMPLE_RATE",
    "MediaSession",
    "pad_access_unit",
    "pcm_rms",
    "plain_text",
    "sentence_timings",
    "speech_duration_ms",
    "split_sentences",
    "still_clip",
    "synth_speech",
]
