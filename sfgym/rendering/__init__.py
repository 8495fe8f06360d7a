"""Watching followers: the side-by-side view, video export, and following audio live.

- :mod:`sfgym.rendering.view`: :class:`~sfgym.rendering.view.SideBySideView` draws one frame (pygame).
- :mod:`sfgym.rendering.session`: :class:`~sfgym.rendering.session.SideBySideSession` runs several followers
  on one piece, one environment each, and serves the state of any frame.
- :mod:`sfgym.rendering.player`: real-time playback in a window (pause / step / seek), or mp4 export.
- :mod:`sfgym.rendering.video`: mp4 writing (OpenCV) and audio muxing (ffmpeg or imageio-ffmpeg).
- :mod:`sfgym.rendering.streaming`: the reference spectrogram computed causally, block by block.
- :mod:`sfgym.rendering.live`: :class:`~sfgym.rendering.live.LiveFollowing`, a follower on streamed audio
  (a whole recording paced, or pushed block by block), with page-turn (system-change) events, per-frame
  latency and the position held on silence.
- :mod:`sfgym.rendering.systems`: staff-system bounds of an unrolled sheet, detected from the image.

The command-line front ends are ``sfgym render`` and ``sfgym follow``. Importing this package imports
nothing heavy; pygame is loaded by the modules that draw.
"""
