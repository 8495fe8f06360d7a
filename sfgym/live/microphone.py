"""Live input from a sound card (a microphone), through ``sounddevice`` (PortAudio).

:class:`SoundCardSource` is an :class:`~sfgym.live.sources.AudioSource`: PortAudio calls its callback on its
own thread with each block the device recorded; the callback only mixes the block down to mono, copies it
into a bounded queue and returns (it never waits: when the queue is full, because the follower fell behind,
the block is dropped and counted in :attr:`SoundCardSource.dropped_blocks`). :meth:`SoundCardSource.blocks`,
on the follower's thread, yields the queued blocks until :meth:`SoundCardSource.stop`. The blocks are at the
device's own rate; :class:`~sfgym.live.engine.LiveFollowing` resamples them as it does any source.

``sounddevice`` is imported when a device is first needed (:func:`import_sounddevice`), so that sfgym runs
where PortAudio is not installed; there a :class:`LiveInputError` says what to install.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from sfgym.live.sources import DEFAULT_BLOCK_SIZE

MISSING_PORTAUDIO = ("live input needs sounddevice and PortAudio: pip install sounddevice; "
                     "apt-get install libportaudio2")
"""What to install for live input, said where it is missing."""
QUEUE_BLOCKS = 512
"""Blocks the queue between the audio callback and the follower holds (512 x 512 samples: 6 s at 44.1 kHz)."""


class LiveInputError(RuntimeError):
    """Live input is impossible: sounddevice / PortAudio missing, no such device, or the device failed."""


def import_sounddevice() -> ModuleType:
    """The ``sounddevice`` module.

    Imported here, not at the top of the module: it loads PortAudio, which many machines (servers, CI) lack
    and which only live input needs.

    Raises:
        LiveInputError: sounddevice is not installed, or PortAudio is not (sounddevice raises ``OSError``).
    """
    try:
        import sounddevice
    except (ImportError, OSError) as error:
        raise LiveInputError(f"{MISSING_PORTAUDIO} ({error})") from None
    return sounddevice


@dataclass(frozen=True)
class InputDevice:
    """A device that can record."""

    index: int
    name: str
    channels: int
    sample_rate: float  # the device's default rate
    is_default: bool

    def __str__(self) -> str:
        default = "  (default)" if self.is_default else ""
        return f"{self.index:>3}  {self.name}  ({self.channels} ch, {self.sample_rate:g} Hz){default}"


def list_input_devices() -> list[InputDevice]:
    """The devices with input channels, as PortAudio numbers them."""
    sounddevice = import_sounddevice()
    try:
        default_input = _default_input_index(sounddevice)
        return [InputDevice(int(index), str(info["name"]), int(info["max_input_channels"]),
                            float(info["default_samplerate"]), int(index) == default_input)
                for index, info in enumerate(sounddevice.query_devices()) if info["max_input_channels"] > 0]
    except sounddevice.PortAudioError as error:
        raise LiveInputError(f"cannot list the audio devices: {error}") from None


def _default_input_index(sounddevice: ModuleType) -> int | None:
    """The default input's index (``sounddevice.default.device`` is an (input, output) pair), or ``None``."""
    index = sounddevice.default.device[0]
    return None if index is None or int(index) < 0 else int(index)


def find_input_device(device: int | str | None) -> InputDevice:
    """The input device ``device``: its index, (part of) its name, or ``None`` for the default input.

    Raises:
        LiveInputError: no such input device, a name that several devices match, or no default input.
    """
    devices = list_input_devices()
    if not devices:
        raise LiveInputError("no audio input device found (is a microphone connected?)")
    if device is None:
        chosen = [d for d in devices if d.is_default] or devices[:1]
        return chosen[0]
    if isinstance(device, int) or str(device).strip().isdigit():
        by_index = [d for d in devices if d.index == int(device)]
        if not by_index:
            raise LiveInputError(f"no input device {device}; the input devices are:\n" + _listing(devices))
        return by_index[0]
    by_name = [d for d in devices if str(device).lower() in d.name.lower()]
    if len(by_name) != 1:
        problem = "no input device" if not by_name else "several input devices"
        raise LiveInputError(f"{problem} named like {device!r}; the input devices are:\n" + _listing(devices))
    return by_name[0]


def _listing(devices: list[InputDevice]) -> str:
    return "\n".join(str(device) for device in devices)


class SoundCardSource:
    """A sound card's input as an :class:`~sfgym.live.sources.AudioSource`: mono blocks at the device's rate.

    Args:
        device: an input device's index or (part of its) name; ``None``: the default input.
        block_size: samples per block PortAudio delivers.
        queue_blocks: blocks held for the consumer; beyond that, new blocks are dropped (and counted).
        sample_rate: ask the device for this rate instead of its default.

    Raises:
        LiveInputError: sounddevice / PortAudio missing or no such device (see :func:`find_input_device`).
    """

    def __init__(self, device: int | str | None = None, *, block_size: int = DEFAULT_BLOCK_SIZE,
                 queue_blocks: int = QUEUE_BLOCKS, sample_rate: int | None = None):
        self._sounddevice = import_sounddevice()
        self.device = find_input_device(device)
        self.name = f"input device {self.device.index} ({self.device.name})"
        self.block_size = int(block_size)
        self._sample_rate = int(sample_rate or round(self.device.sample_rate))
        self._queue: queue.Queue[np.ndarray] = queue.Queue(maxsize=queue_blocks)
        self._stopped = threading.Event()
        #: blocks dropped because the consumer fell behind (the queue was full)
        self.dropped_blocks = 0
        #: callbacks in which PortAudio reported a problem (e.g. an input overflow in the driver)
        self.status_reports = 0

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    def stop(self) -> None:
        """End :meth:`blocks` after the block it is waiting for (callable from any thread)."""
        self._stopped.set()

    def _on_audio(self, indata: np.ndarray, frames: int, time: Any, status: Any) -> None:
        """PortAudio's callback, on its thread: copy the block into the queue, never wait."""
        if status:
            self.status_reports += 1
        mono = indata.mean(axis=1, dtype=np.float32) if indata.ndim == 2 else np.array(indata, dtype=np.float32)
        try:
            self._queue.put_nowait(mono)
        except queue.Full:
            self.dropped_blocks += 1

    def blocks(self) -> Iterator[np.ndarray]:
        """The blocks as they arrive, until :meth:`stop` (the stream is open while this is iterated)."""
        sounddevice = self._sounddevice
        self._stopped.clear()
        try:
            stream = sounddevice.InputStream(device=self.device.index, channels=self.device.channels,
                                             samplerate=self.sample_rate, blocksize=self.block_size,
                                             dtype="float32", callback=self._on_audio)
        except (sounddevice.PortAudioError, ValueError) as error:
            raise LiveInputError(f"cannot open {self.name}: {error}") from None
        with stream:
            while not self._stopped.is_set():
                try:
                    yield self._queue.get(timeout=0.1)
                except queue.Empty:
                    if not stream.active:  # the device went away
                        raise LiveInputError(f"{self.name} stopped delivering audio") from None


__all__ = ["MISSING_PORTAUDIO", "QUEUE_BLOCKS", "InputDevice", "LiveInputError", "SoundCardSource",
           "find_input_device", "import_sounddevice", "list_input_devices"]
