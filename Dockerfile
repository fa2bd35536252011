# BrainScan's serving image: the app on the LiteRT runtime only (requirements-serve.txt: no TensorFlow, so no Train
# page), run by a non-root user; Python 3.12 on Debian 12, the Debian of deploy/proxy.Dockerfile's haproxy. The
# models are not in the image: mount a models folder (default/ in it) read-only at /app/models, as
# deploy/compose.yaml does. From the repository root:
#   docker build -t brainscan-serve .
#   docker run --rm -p 8501:8501 -v "$PWD/models:/app/models:ro" brainscan-serve
FROM python:3.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    BRAINSCAN_TRAIN_PAGE=off

RUN groupadd --system --gid 10001 brainscan \
    && useradd --system --uid 10001 --gid brainscan --create-home --home-dir /home/brainscan brainscan

WORKDIR /app
COPY requirements-serve.txt ./
RUN pip install -r requirements-serve.txt

# Code and teaching files owned by root, read-only for the app's user (.dockerignore keeps everything else out,
# secrets.toml included).
COPY .streamlit/config.toml .streamlit/config.toml
COPY streamlit_app.py ./
COPY brainscan brainscan
COPY pages pages
COPY case_library case_library
COPY sample_images sample_images

USER brainscan
EXPOSE 8501
# The slim image has no curl: Python asks Streamlit's health endpoint (urlopen raises unless it answers 2xx).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"]
CMD ["streamlit", "run", "streamlit_app.py", "--server.address=0.0.0.0", "--server.port=8501", "--server.headless=true"]
