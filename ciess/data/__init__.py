"""Data: fetch and verify sources, preprocess to one interaction table, split per user."""
