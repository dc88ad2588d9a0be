# syntax=docker/dockerfile:1.7
# nmtune image: API (`nmtune serve`), worker (`nmtune worker`) and `nmtune migrate`.
#
# CPU (default):  docker build -t nmtune .
# CUDA:           docker build -t nmtune:cuda \
#                   --build-arg BASE_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 \
#                   --build-arg BUILDER_IMAGE=nvidia/cuda:12.6.3-cudnn-devel-ubuntu24.04 \
#                   --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126 .
# (CUDA base images carry no Python of their own: the apt step below installs python3.)

ARG BASE_IMAGE=python:3.11-slim-bookworm
ARG BUILDER_IMAGE=${BASE_IMAGE}

# ---------------------------------------------------------------- build: a venv with wheels
FROM ${BUILDER_IMAGE} AS build
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG EXTRAS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive
RUN if ! command -v python3 >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
      && rm -rf /var/lib/apt/lists/*; \
    fi
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch first, from the CPU or the CUDA index: the project's range (torch>=2.2,<3) is then met
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY tuner ./tuner
COPY adapters ./adapters
COPY service ./service
COPY migrations ./migrations
RUN pip install ".${EXTRAS}"

# ---------------------------------------------------------------- runtime: slim, non-root
FROM ${BASE_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH HF_HUB_OFFLINE=1
RUN if ! command -v python3 >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends python3 \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
    && groupadd --system --gid 10001 nmtune \
    && useradd --system --uid 10001 --gid nmtune --home-dir /app --create-home nmtune
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
USER nmtune:nmtune
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD python3 -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3).status == 200 else 1)"
ENTRYPOINT ["nmtune"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
