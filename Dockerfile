# callsync: one image for every service in docker-compose.yml (migrate, worker, beat, api, flower).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# The source tree lives here, side by side: app/, alembic/, alembic.ini, celerybeat-schedule.py,
# var/. app/celery.py finds the beat schedule and its state directory at
# Path(app/celery.py).parent.parent, so the package must run from this tree (editable install
# below), not from a copy in site-packages.
WORKDIR /srv/callsync

RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/callsync callsync

# Dependencies first, read from pyproject.toml alone: this layer is rebuilt only when
# pyproject.toml changes, not on every source edit. No dev extras.
COPY pyproject.toml README.m[d] ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the project itself.
COPY alembic.ini celerybeat-schedule.py ./
COPY alembic/ alembic/
COPY app/ app/
RUN pip install --no-deps -e . \
    && python -m compileall -q app alembic \
    && mkdir -p var \
    && chown callsync:callsync var

# Source stays root-owned and read-only for the service user; only var/ (beat's state file,
# var/celerybeat-schedule) is writable.
USER callsync

EXPOSE 8000 5555

CMD ["callsync", "api", "--host", "0.0.0.0", "--port", "8000"]
