"""The reference spectrogram, computed frame by frame as audio arrives (for live following).

:func:`sfgym.data.spectrogram.spectrogram_from_audio` needs the whole recording. A live follower gets
audio in blocks, as from a sound card, and must compute each frame as soon as, and only from, the
samples that have arrived. :class:`StreamingSpectrogram` does that with exactly the offline framing:
frame ``i`` is centred on sample ``floor(i * hop)`` (hop = 1102.5 samples at 22.05 kHz) and spans
samples ``[floor(i * hop) - 1024, floor(i * hop) + 1024)``, so it is ready once sample
``floor(i * hop) + 1023`` has arrived, 46 ms after its centre. Samples before the start are zeros;
:meth:`StreamingSpectrogram.finish` zero-pads the end and emits the last frames, so the streamed frames
equal the offline spectrogram (to float32 rounding) frame for frame, with the same frame count.

Every emitted frame's loudness is kept too (:attr:`StreamingSpectrogram.frame_rms`, the RMS of its
samples before windowing): live following tells silence from sound with it.

Input at another sample rate is resampled block by block with ``soxr.ResampleStream`` (the offline
path resamples the whole signal with ``soxr.resample``; the two agree to within resampler edge effects).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
import soxr

from sfgym.data.spectrogram import SpectrogramParams, log_filterbank


class StreamingSpectrogram:
    """Causal, incremental 78-bin log-frequency spectrogram.

    >>> stream = StreamingSpectrogram(sample_rate=22050)
    >>> frames = stream.push(block)      # (78, k) new frames, k >= 0           # doctest: +SKIP
    >>> frames = stream.finish()         # the last frames, end zero-padded    # doctest: +SKIP

    Args:
        sample_rate: rate of the pushed samples; resampled to ``params.sample_rate`` if different.
        params: spectrogram parameters (the reference ones by default).

    Integer PCM blocks are scaled by ``1 / iinfo(dtype).max`` (madmom's scaling, as offline); float
    blocks are used as they are.
    """

    def __init__(self, sample_rate: int, params: SpectrogramParams = SpectrogramParams()):
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        self.params = params
        self.input_rate = int(sample_rate)
        self._resampler = (
            None if self.input_rate == params.sample_rate
            else soxr.ResampleStream(self.input_rate, params.sample_rate, 1, dtype="float32", quality="HQ")
        )
        self._window = np.hanning(params.frame_size).astype(np.float32)
        self._filterbank = log_filterbank(params)
        self._half = params.frame_size // 2
        # _buffer holds resampled samples from absolute index _buffer_start on.
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0
        self._samples_in = 0  # resampled samples received so far
        self._next_frame = 0
        self._finished = False
        #: RMS of each emitted frame's samples (unwindowed, full scale 1.0), in emission order
        self.frame_rms: list[float] = []

    # ------------------------------------------------------------------ state
    @property
    def frames_done(self) -> int:
        """Number of frames emitted so far."""
        return self._next_frame

    @property
    def samples_received(self) -> int:
        """Samples received so far, at the spectrogram's sample rate."""
        return self._samples_in

    def frame_ready_sample(self, frame: int) -> int:
        """The (resampled) sample count at which ``frame`` can be computed: its last sample plus one."""
        return int(math.floor(frame * self.params.hop_size)) + self._half

    # ------------------------------------------------------------------ feeding
    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add a block of mono samples (1-D, float in [-1, 1] or integer PCM); return the new frames ``(78, k)``."""
        if self._finished:
            raise RuntimeError("push() after finish(): start a new StreamingSpectrogram")
        block = self._to_float(samples)
        if self._resampler is not None:
            block = self._resampler.resample_chunk(block, last=False)
        return self._append(block, final=False)

    def finish(self) -> np.ndarray:
        """End of the stream: flush the resampler, zero-pad the end, return the remaining frames.

        The total frame count then equals the offline one, ``ceil(n_samples / hop)``.
        """
        if self._finished:
            return np.zeros((self._filterbank.shape[1], 0), dtype=np.float32)
        tail = np.zeros(0, dtype=np.float32)
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        self._finished = True
        return self._append(tail, final=True)

    def _to_float(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples)
        if samples.ndim == 2:  # (n, channels): mix down as the offline code does
            samples = samples.mean(axis=1).astype(samples.dtype) if np.issubdtype(samples.dtype, np.integer) \
                else samples.mean(axis=1)
        if samples.ndim != 1:
            raise ValueError(f"push() takes 1-D mono (or 2-D samples x channels) audio, got shape {samples.shape}")
        if np.issubdtype(samples.dtype, np.integer):
            return samples.astype(np.float32) * np.float32(1.0 / np.iinfo(samples.dtype).max)
        if not np.issubdtype(samples.dtype, np.floating):
            raise ValueError(f"audio samples must be integer or float, got dtype {samples.dtype}")
        block = samples.astype(np.float32, copy=False)
        if not np.all(np.isfinite(block)):
            raise ValueError("audio block contains NaN or infinite samples")
        return block

    def _append(self, block: np.ndarray, final: bool) -> np.ndarray:
        self._buffer = np.concatenate([self._buffer, block])
        self._samples_in += len(block)
        hop, half = self.params.hop_size, self._half
        if final:
            n_frames_total = math.ceil(self._samples_in / hop) if self._samples_in else 0
            # zero-pad so that every remaining frame is complete
            needed = self.frame_ready_sample(max(n_frames_total - 1, 0)) - (self._buffer_start + len(self._buffer))
            if needed > 0:
                self._buffer = np.concatenate([self._buffer, np.zeros(needed, dtype=np.float32)])
        else:
            n_frames_total = None
        available_end = self._buffer_start + len(self._buffer)
        columns = []
        while True:
            frame = self._next_frame
            if final and frame >= n_frames_total:
                break
            if not final and self.frame_ready_sample(frame) > available_end:
                break
            # a frame may only start past the end of the signal at finish(); then it is all zeros
            centre = int(math.floor(frame * hop))
            columns.append(self._frame(centre - half))
            self._next_frame += 1
        # forget samples no future frame needs
        keep_from = int(math.floor(self._next_frame * hop)) - half
        drop = keep_from - self._buffer_start
        if drop > 0:
            self._buffer = self._buffer[drop:]
            self._buffer_start += drop
        if not columns:
            return np.zeros((self._filterbank.shape[1], 0), dtype=np.float32)
        samples = np.stack(columns)
        self.frame_rms.extend(np.sqrt(np.mean(np.square(samples, dtype=np.float64), axis=1)).tolist())
        magnitudes = np.abs(scipy.fft.rfft(samples * self._window, axis=1)[:, : self.params.n_fft_bins])
        filtered = magnitudes @ self._filterbank
        return np.ascontiguousarray((np.log1p(filtered) / np.log(10.0)).T, dtype=np.float32)

    def _frame(self, start: int) -> np.ndarray:
        """Samples ``[start, start + frame_size)`` (not windowed); before sample 0 are zeros."""
        size = self.params.frame_size
        out = np.zeros(size, dtype=np.float32)
        first = max(start, self._buffer_start, 0)
        last = min(start + size, self._buffer_start + len(self._buffer))
        if last > first:
            out[first - start : last - start] = self._buffer[first - self._buffer_start : last - self._buffer_start]
        return out


__all__ = ["StreamingSpectrogram"]
