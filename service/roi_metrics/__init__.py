"""roi-metrics: live return on investment of AI customer support."""

__version__ = "0.1.0"
