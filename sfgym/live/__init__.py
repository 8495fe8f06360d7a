"""Following audio live: a follower on streamed audio, with page-turn (system-change) events.

- :mod:`sfgym.live.engine`: :class:`LiveFollowing`, a follower on audio that arrives block by block (pushed,
  or from an :class:`AudioSource`), with page-turn events, per-frame latency and the position held on
  silence; :func:`read_live_score` reads the score to follow.
- :mod:`sfgym.live.streaming`: the reference spectrogram computed causally, block by block.
- :mod:`sfgym.live.sources`: where the audio comes from: the :class:`AudioSource` interface and
  :class:`RecordingSource`, a recording fed as if it were live.
- :mod:`sfgym.live.microphone`: :class:`SoundCardSource`, a sound card's input (sounddevice / PortAudio,
  imported when first used), and the listing of input devices.
- :mod:`sfgym.live.music_start`: waiting for the music (:class:`WaitForMusic`): the follower starts when the
  audio is music that matches the score's opening, not on room noise or talking before it.

The command-line front end is ``sfgym follow``; drawing the follower (``--show``) is :mod:`sfgym.rendering`'s.
"""

from sfgym.live.engine import (SCORE_FILE_SUFFIXES, SILENCE_DBFS, SILENCE_WARNING_S, LiveFollowing, LiveReport,
                               LiveScore, LiveStep, SilentInputWarning, SystemChange, live_piece, read_live_score,
                               read_piece_score, write_positions_csv)
from sfgym.live.microphone import LiveInputError, SoundCardSource, list_input_devices
from sfgym.live.music_start import MusicStartDetector, WaitForMusic
from sfgym.live.sources import DEFAULT_BLOCK_SIZE, AudioSource, RecordingSource
from sfgym.live.streaming import StreamingSpectrogram

__all__ = ["DEFAULT_BLOCK_SIZE", "SCORE_FILE_SUFFIXES", "SILENCE_DBFS", "SILENCE_WARNING_S", "AudioSource",
           "LiveFollowing", "LiveInputError", "LiveReport", "LiveScore", "LiveStep", "MusicStartDetector",
           "RecordingSource", "SoundCardSource", "WaitForMusic", "list_input_devices", "SilentInputWarning",
           "StreamingSpectrogram", "SystemChange", "live_piece", "read_live_score", "read_piece_score",
           "write_positions_csv"]
