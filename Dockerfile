FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
RUN useradd --create-home steelqc && chown -R steelqc /app
USER steelqc
# The manifest the production static-files storage needs is made with the same storage.
RUN DJANGO_SETTINGS_MODULE=steelqc.settings.base SECRET_KEY=image-build-only python manage.py collectstatic --noinput
EXPOSE 8000
CMD ["gunicorn", "steelqc.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
