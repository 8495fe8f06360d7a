"""MSMD piece model, loading, spectrograms, synthesis, engraving and dataset building; reading audio
(:mod:`~sfgym.data.audio`), finding a piece by name (:mod:`~sfgym.data.lookup`) and the staff-system bounds
of a sheet (:mod:`~sfgym.data.systems`)."""
