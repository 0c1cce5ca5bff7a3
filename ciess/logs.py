"""Logging for workflow scripts: every rule writes its own log file."""
from __future__ import annotations

import logging
import sys


def setup_rule_logging(log_path: str | None, level: int = logging.INFO) -> logging.Logger:
    """Send logging (and stray stderr, e.g. tracebacks and tqdm) to the rule's log file."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if log_path:
        stream = open(log_path, "a", buffering=1)
        sys.stderr = stream
        handlers = [logging.StreamHandler(stream)]
    logging.basicConfig(level=level, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return logging.getLogger("ciess")

