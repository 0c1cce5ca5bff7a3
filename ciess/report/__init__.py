"""Reporting and provenance: reading verified run records, the tables and figures, the shipped
reference snapshots, costs and paired comparisons. Nothing in the training path imports this
package (tests/test_layering.py)."""
