"""oncorwe.analysis (being written)."""
