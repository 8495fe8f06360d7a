"""Watching followers: the side-by-side view and video export.

- :mod:`sfgym.rendering.view`: :class:`~sfgym.rendering.view.SideBySideView` draws one frame (pygame).
- :mod:`sfgym.rendering.session`: :class:`~sfgym.rendering.session.SideBySideSession` runs several followers
  on one piece, one environment each, and serves the state of any frame.
- :mod:`sfgym.rendering.player`: real-time playback in a window (pause / step / seek), or mp4 export.
- :mod:`sfgym.rendering.video`: mp4 writing (OpenCV) and audio muxing (ffmpeg or imageio-ffmpeg).

Following audio live is :mod:`sfgym.live`; the staff-system bounds the view marks are
:mod:`sfgym.data.systems`'. The command-line front ends are ``sfgym render`` and ``sfgym follow``. Importing
this package imports nothing heavy; pygame is loaded by the modules that draw.
"""
