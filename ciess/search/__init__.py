"""CIESS: TD3 embedding-size search with random-walk exploration (shared/spec/ciess.md)."""
