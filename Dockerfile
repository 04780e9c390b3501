# syntax=docker/dockerfile:1
# One image for every vid2mp3 process; only the command differs:
#   api (default)   gunicorn -c gunicorn.conf.py api.wsgi:app
#   convert worker  python -m workers.convert
#   notify worker   python -m workers.notify
#   sweeper         python -m workers.beat
#   migration       python -m core.migrate   (once per deploy, before the others start)
#   Flower          python -m workers.flower --address=0.0.0.0
# ffmpeg comes from the imageio-ffmpeg wheel (pulled in by moviepy), so no system ffmpeg.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: the project and its dependencies in a virtualenv --------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
# mysqlclient, the MySQL driver, is a C extension built here against libmariadb.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc pkg-config libmariadb-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY pyproject.toml celeryconfig.py ./
COPY api/ api/
COPY core/ core/
COPY tasks/ tasks/
COPY workers/ workers/
COPY migrations/ migrations/
# Non-editable install: the final stage gets site-packages, never the source tree.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --upgrade pip \
    && pip install . \
    && python -c "import imageio_ffmpeg, subprocess; subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), '-version'], check=True, stdout=subprocess.DEVNULL)" \
    && cd / && python -c "import api.web as web, swagger_ui_bundle; assert (web.STATIC / 'index.html').is_file() and (web.STATIC / 'app.js').is_file(), 'web page assets missing from the wheel'" \
    && python -c "from core.adapters.mysql.migrations import load; assert load(), 'migrations missing from the wheel'" \
    && python -c "import MySQLdb._mysql"

# --- runtime: no compilers, no pip cache, no source, not root -------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="vid2mp3" \
      org.opencontainers.image.description="Video to MP3: Flask API, Celery workers, Flower"

# tini is PID 1: it forwards SIGTERM to the process (Celery's warm shutdown, gunicorn's
# graceful stop) and reaps orphans; a Python PID 1 would ignore an unhandled SIGTERM.
# libmariadb3: the client library mysqlclient's C extension links to (no compiler here).
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini libmariadb3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 vid2mp3 \
    && useradd --system --uid 10001 --gid vid2mp3 --home-dir /app --no-create-home \
               --shell /usr/sbin/nologin vid2mp3

# The root filesystem may be read-only (Kubernetes): nothing writes bytecode; gunicorn's
# control socket is off (gunicorn.conf.py), and XDG_RUNTIME_DIR points at the writable /tmp.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    XDG_RUNTIME_DIR=/tmp \
    API_HOST=0.0.0.0 \
    DATA_DIR=/app/data

WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
# gunicorn reads its settings file from the working directory; it is not a package module.
COPY gunicorn.conf.py ./
# DATA_DIR holds scratch files and the beat schedule; Kubernetes mounts an emptyDir here.
RUN mkdir -p /app/data && chown vid2mp3:vid2mp3 /app/data

USER 10001:10001
EXPOSE 8080 5555

# For the default command (the API). docker-compose.yml gives every other service its own.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('API_PORT', '8080'), timeout=4)"]

ENTRYPOINT ["tini", "--"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "api.wsgi:app"]
