"""The exporter: the Collector that renders the domain's report as gauge families, and the
text exposition and HTTP server of /metrics, /healthz and /readyz."""
