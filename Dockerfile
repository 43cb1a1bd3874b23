# Dockerfile - the dsa-ingest image. The build stage compiles with the repository's own
# CMake (Release) on Debian 12 against the same -dev packages as scripts/install-deps.sh;
# the runtime stage is debian:12-slim with the binary, the shared libraries it links and
# the CA certificates, running as the unprivileged user 10001. The build fails when the
# runtime package list no longer matches what the binary links
# (scripts/check-dockerfile-deps.sh, also run by ctest as deploy/dockerfile-deps).
#
#   docker build -t dsa-ingest:0.1.0 .
#   docker run --rm -e DATABASE_URL=postgresql://… dsa-ingest:0.1.0 migrate

ARG DEBIAN_IMAGE=debian:12-slim

FROM ${DEBIAN_IMAGE} AS build
# build-packages: begin
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libcurl4-openssl-dev libpq-dev zlib1g-dev libarchive-dev libxxhash-dev libcjson-dev \
      libexpat1-dev libmicrohttpd-dev libcsv-dev \
 && rm -rf /var/lib/apt/lists/*
# build-packages: end
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake/ cmake/
COPY include/ include/
COPY sql/ sql/
COPY src/ src/
RUN cmake -B build -DCMAKE_BUILD_TYPE=Release \
 && cmake --build build --target dsa-ingest -j"$(nproc)"
COPY Dockerfile ./
COPY scripts/check-dockerfile-deps.sh scripts/install-deps.sh scripts/
RUN scripts/check-dockerfile-deps.sh build/dsa-ingest Dockerfile

FROM ${DEBIAN_IMAGE} AS runtime
# runtime-packages: begin
# Exactly the packages of the libraries in the binary's DT_NEEDED (libc6 is in the base).
# not-linked: ca-certificates (the TLS roots libcurl and libpq verify servers against)
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates \
      libarchive13 \
      libcjson1 \
      libcsv3 \
      libcurl4 \
      libexpat1 \
      libmicrohttpd12 \
      libpq5 \
      libxxhash0 \
      zlib1g \
 && rm -rf /var/lib/apt/lists/*
# runtime-packages: end
RUN groupadd --gid 10001 dsa \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin dsa
COPY --from=build /src/build/dsa-ingest /usr/local/bin/dsa-ingest
LABEL org.opencontainers.image.title="dsa-ingest" \
      org.opencontainers.image.description="The DSA platform's streaming import worker"
# The root filesystem is read-only under the Helm chart; /tmp is its one writable path.
ENV HOME=/tmp
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/dsa-ingest"]
CMD ["worker", "--listen", "0.0.0.0:8080"]
