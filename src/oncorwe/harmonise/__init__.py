"""oncorwe.harmonise (being written)."""
