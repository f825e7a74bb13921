"""oncorwe.synth (being written)."""
