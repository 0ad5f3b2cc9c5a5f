# syntax=docker/dockerfile:1
# payee-stream image: one image for every role, chosen by the command.
#   docker run payee-stream worker          # enrichment worker (Faust), /health /ready /metrics on 6066
#   docker run payee-stream sink            # PostgreSQL sink, /metrics on 6067
#   docker run payee-stream db migrate      # one-shot schema migration
#   docker run payee-stream suppliers load /data/suppliers.csv.gz
# Build from the repository root:  docker build -t payee-stream:latest .

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: install the package and its dependencies into a self-contained venv -----------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# README.m[d]: pyproject.toml names README.md as the long description; the glob keeps the build
# working whether or not the file is present (setuptools only warns when it is missing).
COPY pyproject.toml README.m[d] ./
COPY streams ./streams
COPY agents ./agents
COPY schemas ./schemas
COPY domain ./domain
COPY migrations ./migrations
# Every dependency ships manylinux wheels for CPython 3.11, so no compiler is needed.
# streams/db.py reads the SQL migrations from <parent of the streams package>/migrations, which
# the wheel does not contain: put them next to the installed packages (site-packages/migrations).
RUN pip install --upgrade pip \
 && pip install . \
 && cp -r migrations "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/migrations" \
 && python -c 'from streams.db import MIGRATIONS_DIR, load_migrations; assert load_migrations(), MIGRATIONS_DIR' \
 && payee-stream --help >/dev/null

# --- runtime: the venv only, run as an unprivileged user ---------------------------------------
FROM ${PYTHON_IMAGE}
# PAYEE_STREAM_WEB_HOST: in a container the web server must listen beyond loopback (the settings
# default is 127.0.0.1). PAYEE_STREAM_DATA_DIR: supplier-index snapshot and Faust data; mount a
# volume there for fast restarts.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PAYEE_STREAM_WEB_HOST=0.0.0.0 \
    PAYEE_STREAM_DATA_DIR=/var/lib/payee-stream
RUN groupadd --system --gid 10001 payee \
 && useradd --system --uid 10001 --gid payee --home-dir /var/lib/payee-stream \
        --shell /usr/sbin/nologin payee \
 && mkdir -p /var/lib/payee-stream \
 && chown payee:payee /var/lib/payee-stream
COPY --from=build /opt/venv /opt/venv
# Numeric user so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
WORKDIR /var/lib/payee-stream
# 6066: worker web server (/health, /ready, /metrics); 6067: sink /metrics.
EXPOSE 6066 6067
# The worker handles SIGTERM itself (Faust leaves the consumer group cleanly); give it time to.
STOPSIGNAL SIGTERM
ENTRYPOINT ["payee-stream"]
CMD ["worker"]
