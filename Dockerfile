# One image for all five services: `greentic ingress|router|executor|egress|pack-loader`.
# Runs as uid 65532 on a read-only root filesystem: the only writable paths are /tmp and the
# working directory /var/lib/greentic (relative caches such as .greentic/ land there); the Helm
# chart mounts an emptyDir on each.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/greentic
WORKDIR /src
# exactly the locked versions (hash-checked), without the dev extra; the locked build tools
# build the lock's sdists and the project (requirements/README.md)
COPY requirements/build.txt requirements/runtime.txt ./requirements/
RUN /opt/greentic/bin/pip install --require-hashes -r requirements/build.txt \
 && /opt/greentic/bin/pip install --require-hashes --no-build-isolation -r requirements/runtime.txt
COPY pyproject.toml setup.py README.md ./
COPY shared ./shared
COPY services ./services
# a regular (not editable) install: the venv is all the runtime stage needs
RUN /opt/greentic/bin/pip install --no-deps --no-build-isolation . \
 && /opt/greentic/bin/pip check \
 && /opt/greentic/bin/python -m compileall -q /opt/greentic/lib

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/greentic/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/greentic \
    XDG_CACHE_HOME=/tmp/cache \
    GREENTIC_BUNDLE=/etc/greentic/bundle/greentic.yaml
COPY --from=build /opt/greentic /opt/greentic
# the demo bundle and pack: the chart's default bundle points at them
COPY examples /usr/share/greentic/examples
RUN mkdir -p /var/lib/greentic /etc/greentic/bundle \
 && cp /usr/share/greentic/examples/demo/greentic.demo.yaml /etc/greentic/bundle/greentic.yaml \
 && sed -i 's|path: pack|path: /usr/share/greentic/examples/demo/pack|' /etc/greentic/bundle/greentic.yaml \
 && chown 65532:65532 /var/lib/greentic
WORKDIR /var/lib/greentic
USER 65532:65532
# 8080: ingress's public HTTP API; 8081: /healthz, /readyz (and /metrics) on every service
EXPOSE 8080 8081
ENTRYPOINT ["greentic"]
CMD ["--help"]
