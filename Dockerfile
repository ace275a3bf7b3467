# TrialHub production image: gunicorn by default; the same image runs the Celery worker and beat
# (see docker-compose.yml). Configuration comes from the environment (.env.example lists it).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 trialhub \
    && useradd --system --uid 10001 --gid trialhub --home-dir /app --no-create-home trialhub

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so that code changes reuse this layer.
# (pyproject.toml installs no packages of its own: `packages = []`; the code runs from /app.)
COPY pyproject.toml /tmp/build/pyproject.toml
RUN pip install /tmp/build && rm -rf /tmp/build

# The code stays owned by root: the application user can read it, not change it.
COPY . /app

# Static files are collected at build time; these values exist only for this step.
RUN DEBUG=false \
    SECRET_KEY=build-time-only-dummy-secret-key-not-used-at-run-time-0123456789 \
    ALLOWED_HOSTS=build.invalid \
    python manage.py collectstatic --noinput

USER trialhub
EXPOSE 8000

CMD ["gunicorn", "trialhub.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
