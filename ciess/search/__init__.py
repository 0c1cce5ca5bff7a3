"""CIESS: TD3 embedding-size search with random-walk exploration (the ciess spec)."""
