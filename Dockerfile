FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
# pg_dump/pg_restore for backup_installation and restore_installation (15, as the compose database).
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
RUN useradd --create-home steelqc && chown -R steelqc /app
USER steelqc
# The manifest the production static-files storage needs is made with the same storage.
RUN DJANGO_SETTINGS_MODULE=steelqc.settings.base SECRET_KEY=image-build-only python manage.py collectstatic --noinput
EXPOSE 8000
# The one server configuration (also used by docker-compose.yml, `make web` and bench-serve).
CMD ["gunicorn", "--config", "gunicorn.conf.py", "steelqc.wsgi:application"]
