"""Where the real services of the local stack are; the same variables as deploy/local/*.sh.

Plain functions, shared by tests/conftest.py (its fixtures check that the services answer)
and by any test or bench module that needs an address: import them from here, never from a
conftest.
"""

from __future__ import annotations

import os


def kafka_bootstrap() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or (
        f"127.0.0.1:{os.environ.get('ROI_KAFKA_PORT', '19092')}"
    )


def redis_url() -> str:
    return os.environ.get("REDIS_URL") or (
        f"redis://127.0.0.1:{os.environ.get('ROI_REDIS_PORT', '16379')}/15"
    )


def prometheus_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('ROI_PROMETHEUS_PORT', '19090')}"
