"""oncorwe.protocol (being written)."""
