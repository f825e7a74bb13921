"""oncorwe.report (being written)."""
