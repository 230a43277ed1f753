# The roi-metrics image: `worker`, `exporter`, `simulate` and every other CLI command.
#
#   docker build -t roi-metrics .
#
# BASE_IMAGE is any image with Python 3.11+ and its venv module (the default is the official
# Python image; the test suite passes one it makes from Debian's packages, as no registry is
# reachable where it runs). PIP_OPTIONS is passed to pip, e.g. an offline build from a folder
# of wheels put in the build context:
#   pip wheel -w wheelhouse . && docker build \
#     --build-arg PIP_OPTIONS="--no-index --find-links=/src/wheelhouse" -t roi-metrics .
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ARG PIP_OPTIONS=""
# .dockerignore lets in pyproject.toml, README.md, service/ and wheelhouse/ only
COPY . /src
RUN python3 -m venv /opt/roi-metrics \
 && /opt/roi-metrics/bin/pip install --no-cache-dir --disable-pip-version-check -q \
      ${PIP_OPTIONS} /src

FROM ${BASE_IMAGE}
COPY --from=build /opt/roi-metrics /opt/roi-metrics
ENV PATH=/opt/roi-metrics/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ROI_COST_CARD=/etc/roi-metrics/costs.toml \
    ROI_DATA_DIR=/tmp/roi-worker
# the starter cost card and thresholds shipped in the package; mount your own over it
RUN roi-metrics init /etc/roi-metrics \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin roi
USER 10001
ENTRYPOINT ["roi-metrics"]
CMD ["--help"]
