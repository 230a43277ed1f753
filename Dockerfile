# The roi-metrics image: worker, exporter and simulator are its commands.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
RUN pip install --no-cache-dir . && useradd --system --uid 10001 roi
COPY deploy/costs.toml /etc/roi-metrics/costs.toml
USER roi
ENV ROI_COST_CARD=/etc/roi-metrics/costs.toml \
    ROI_DATA_DIR=/tmp/roi-worker
ENTRYPOINT ["roi-metrics"]
CMD ["--help"]
