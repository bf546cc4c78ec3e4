# syntax=docker/dockerfile:1
# Multi-stage: wheels are built in the first stage, the runtime image carries no compiler and
# runs as an unprivileged user. One image serves web, worker and beat (see the README).

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /build
COPY requirements.txt .
RUN pip wheel --wheel-dir /wheels -r requirements.txt

FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings DATA_DIR=/app/data PORT=8000
RUN groupadd --system app && useradd --system --gid app --home-dir /app app
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels /wheels/* && rm -rf /wheels
COPY --chown=app:app . .
# collectstatic needs settings to import; the key is used for nothing else here. BUILD_STEP
# lets the settings load without Stripe's secrets; the web and worker processes refuse it.
RUN SECRET_KEY=collectstatic-only-not-a-real-key-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') \
    BUILD_STEP=1 DEBUG=false python manage.py collectstatic --noinput \
    && mkdir -p /app/data && chown -R app:app /app/data
USER app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz', timeout=4)" || exit 1
CMD ["sh", "-c", "exec gunicorn config.wsgi --bind 0.0.0.0:${PORT} --workers ${WEB_CONCURRENCY:-3} --threads ${WEB_THREADS:-4} --access-logfile - --forwarded-allow-ips='*'"]
