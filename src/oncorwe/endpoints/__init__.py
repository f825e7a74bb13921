"""oncorwe.endpoints (being written)."""
