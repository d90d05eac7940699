# Lotería Nacional server image. No base image: the test machines have a
# Docker engine but no container registry, so nothing can be pulled.
#
# The binary is the static build from `make static` (bin/static/server).
# Build from the repository root, e.g. with the smallest possible context:
#   tar -c docker/server.Dockerfile bin/static/server \
#     | docker build -f docker/server.Dockerfile -t server:latest -
# (`make docker-image` does exactly this), or with the whole repo as context:
#   docker build -f docker/server.Dockerfile -t server:latest .
#
# The configuration is NOT part of the image: mount it at /config/server.ini
# (scripts/generar-compose.sh does), or set the SERVER_* environment variables.
# The program handles SIGTERM itself as PID 1 (exec-form ENTRYPOINT, no shell).
FROM scratch
COPY bin/static/server /server
ENTRYPOINT ["/server", "--config", "/config/server.ini"]
