"""CIESS: TD3 embedding-size search with random-walk exploration (docs/ciess.md)."""
