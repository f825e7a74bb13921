"""oncorwe.sources (being written)."""
