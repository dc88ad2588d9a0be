# nmtune image: API (`nmtune serve`), worker (`nmtune worker`) and `nmtune migrate`.
# Every choice is a build argument; the Dockerfile never needs editing (docs/production.md):
#
#   BASE_IMAGE       runtime base: any Debian/Ubuntu image, with or without Python
#                    (default python:3.11-slim-bookworm; a bare debootstrap image works too)
#   BUILDER_IMAGE    build-stage base (default: BASE_IMAGE; it must have the same python3 path)
#   PYTHON_APT_PACKAGES / RUNTIME_APT_PACKAGES  apt packages (build / runtime stage), installed
#                    only when the base has no python3 (defaults: python3 python3-venv / python3)
#   TORCH_VERSION    torch release (default 2.13.0)
#   TORCH_INDEX_URL  where torch comes from: the CPU index (default) or a CUDA index
#   TORCH_WHEEL      file name of a torch wheel in TORCH_WHEEL_DIR (a folder of the build
#                    context, default deploy/wheels, empty in git) installed instead of the
#                    index; its dependencies come from PIP_INDEX_URL (default: empty, the index)
#   PIP_INDEX_URL    index for everything else (default PyPI)
#   BUILD_CA_DIR     a folder of the build context: *.crt there (e.g. the CA bundle of a
#                    TLS-intercepting proxy) is what pip trusts in the build stage only
#                    (default deploy/certs, empty in git); the runtime image never has it
#   EXTRAS           e.g. "[local]" for local sentence-transformers backbones
#
# CPU:   docker build -t nmtune .
# CUDA:  docker build -t nmtune:cuda \
#          --build-arg BASE_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 \
#          --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126 .
# Wheel: cp torch-2.13.0+cpu-cp311-*.whl deploy/wheels/ && docker build \
#          --build-arg TORCH_WHEEL=torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl .
# Here (no registry): deploy/base-image.sh, then the wheel build above with --network host
#          --build-arg BASE_IMAGE=nmtune-base:bookworm (docs/production.md)
# Secrets never go into build arguments (they are visible in `docker history`).

ARG BASE_IMAGE=python:3.11-slim-bookworm
ARG BUILDER_IMAGE=${BASE_IMAGE}

# ---------------------------------------------------------------- build: a venv with wheels
FROM ${BUILDER_IMAGE} AS build
ARG PYTHON_APT_PACKAGES="python3 python3-venv"
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_WHEEL=""
ARG TORCH_WHEEL_DIR=deploy/wheels
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG BUILD_CA_DIR=deploy/certs
ARG EXTRAS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive \
    PIP_INDEX_URL=${PIP_INDEX_URL} PIP_CERT=/build-ca.pem
RUN if ! command -v python3 >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends ${PYTHON_APT_PACKAGES} \
      && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb; \
    fi
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY ${BUILD_CA_DIR}/ /build-ca/
RUN if ls /build-ca/*.crt >/dev/null 2>&1; then cat /build-ca/*.crt > /build-ca.pem; \
    else cp "$(python -c 'import pip._vendor.certifi as c; print(c.where())')" /build-ca.pem; fi
# torch first (a wheel file from the context, else the CPU or CUDA index); the project's range
# (torch>=2.2,<3) is then met and pip leaves it alone
COPY ${TORCH_WHEEL_DIR}/ /wheels/
RUN if [ -n "${TORCH_WHEEL}" ]; then \
      pip install --no-deps "/wheels/${TORCH_WHEEL}" && pip install "torch==${TORCH_VERSION}"; \
    else \
      pip install --index-url "${TORCH_INDEX_URL}" --extra-index-url "${PIP_INDEX_URL}" \
        "torch==${TORCH_VERSION}"; \
    fi \
    && python -c "import torch; print('torch', torch.__version__)"
WORKDIR /src
# the dependencies, from pyproject.toml alone: this layer (and the runtime's copy of the venv)
# stays cached while only the code changes
COPY pyproject.toml ./
RUN python -c 'import sys, tomllib; \
p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
extras = [e.strip() for e in sys.argv[1].strip("[] ").split(",") if e.strip()]; \
deps = p["dependencies"] + [d for e in extras for d in p["optional-dependencies"][e]]; \
print("\n".join(d for d in deps if not d.startswith(p["name"])))' "${EXTRAS}" \
      > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
# the project itself, apart from the venv (/opt/nmtune, on the venv's path through a .pth)
RUN echo /opt/nmtune > "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/nmtune-app.pth"
COPY README.md ./
COPY tuner ./tuner
COPY adapters ./adapters
COPY service ./service
COPY migrations ./migrations
COPY nmtune ./nmtune
RUN pip install --no-deps --no-build-isolation --target /opt/nmtune ".${EXTRAS}" \
    && cd / && python -c "import nmtune.service.cli, importlib.metadata as m; print(m.version('nmtune'))" \
    && test -x /opt/nmtune/bin/nmtune

# ---------------------------------------------------------------- runtime: slim, non-root
FROM ${BASE_IMAGE} AS runtime
ARG RUNTIME_APT_PACKAGES="python3"
ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/nmtune/bin:/opt/venv/bin:$PATH HF_HUB_OFFLINE=1 \
    NMTUNE_HEALTHCHECK_URL=http://127.0.0.1:8000/healthz
RUN if ! command -v python3 >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends ${RUNTIME_APT_PACKAGES} \
      && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb; \
    fi \
    && groupadd --system --gid 10001 nmtune \
    && useradd --system --uid 10001 --gid nmtune --home-dir /app --create-home nmtune
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/nmtune /opt/nmtune
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# liveness of the API; a worker or migrate container runs with --no-healthcheck (or compose's
# healthcheck: disable). NMTUNE_HEALTHCHECK_URL follows a non-default --port.
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python3", "-c", "import os,sys,urllib.request as u; sys.exit(0 if u.urlopen(os.environ['NMTUNE_HEALTHCHECK_URL'], timeout=2).status == 200 else 1)"]
ENTRYPOINT ["nmtune"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
