# ncat:local — Nmap's ncat, for scripts/validar-echo-server.sh and the Docker
# tests. Built by docker/build-ncat-image.sh, which lays out a root file system
# (rootfs/) in a temporary build context: the host's Debian /usr/bin/ncat, every
# shared library `ldd` says it needs, and the dynamic loader, each at its own
# path. No base image: the test machines have a Docker engine but no container
# registry, so nothing can be pulled (the host needs `apt-get install ncat`).
#
# With a registry, the same image is simply:
#   FROM debian:bookworm-slim
#   RUN apt-get update \
#    && apt-get install -y --no-install-recommends ncat \
#    && rm -rf /var/lib/apt/lists/*
#   ENTRYPOINT ["/usr/bin/ncat"]
# built with `docker build -f that.Dockerfile -t ncat:local .`.
FROM scratch
COPY rootfs/ /
ENTRYPOINT ["/usr/bin/ncat"]
