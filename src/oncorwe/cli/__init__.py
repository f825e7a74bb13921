"""The command-line face of oncorwe (``oncorwe ...``). Nothing imports this package."""
