"""MSMD piece model, loading, spectrograms, synthesis, engraving and dataset building."""
