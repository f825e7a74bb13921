"""oncorwe.cohort (being written)."""
