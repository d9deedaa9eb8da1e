# Tertulia: one image for the API processes (`tertulia serve`) and the Celery workers
# (`tertulia worker`); deploy/compose.yaml runs both behind nginx.
FROM python:3.11-slim

# llama-cpp-python (the local chat model, extra "local") compiles its runtime on install.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir '.[local,scale]'

# Models assembled on first use are kept here (mount a volume to keep them across restarts).
ENV TERTULIA_MODEL_CACHE_DIR=/var/cache/tertulia/models
RUN useradd --system --create-home tertulia \
    && mkdir -p /var/cache/tertulia/models && chown -R tertulia /var/cache/tertulia
USER tertulia

EXPOSE 8000
ENTRYPOINT ["tertulia"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
