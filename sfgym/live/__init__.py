"""Following audio live: a follower on streamed audio, with page-turn (system-change) events.

- :mod:`sfgym.live.engine`: :class:`LiveFollowing`, a follower on audio that arrives block by block (pushed,
  or from an :class:`AudioSource`), with page-turn events, per-frame latency and the position held on
  silence; :func:`read_live_score` reads the score to follow.
- :mod:`sfgym.live.streaming`: the reference spectrogram computed causally, block by block.
- :mod:`sfgym.live.sources`: where the audio comes from: the :class:`AudioSource` interface and
  :class:`RecordingSource`, a recording fed as if it were live.

The command-line front end is ``sfgym follow``; drawing the follower (``--show``) is :mod:`sfgym.rendering`'s.
"""

from sfgym.live.engine import (SCORE_FILE_SUFFIXES, SILENCE_DBFS, SILENCE_WARNING_S, LiveFollowing, LiveReport,
                               LiveScore, LiveStep, SilentInputWarning, SystemChange, live_piece, read_live_score,
                               read_piece_score, write_positions_csv)
from sfgym.live.sources import DEFAULT_BLOCK_SIZE, AudioSource, RecordingSource
from sfgym.live.streaming import StreamingSpectrogram

__all__ = ["DEFAULT_BLOCK_SIZE", "SCORE_FILE_SUFFIXES", "SILENCE_DBFS", "SILENCE_WARNING_S", "AudioSource",
           "LiveFollowing", "LiveReport", "LiveScore", "LiveStep", "RecordingSource", "SilentInputWarning",
           "StreamingSpectrogram", "SystemChange", "live_piece", "read_live_score", "read_piece_score",
           "write_positions_csv"]
