# Lotería Nacional agency (client) image. No base image: the test machines
# have a Docker engine but no container registry, so nothing can be pulled.
#
# The binary is the static build from `make static` (bin/static/client).
# Build from the repository root, e.g. with the smallest possible context:
#   tar -c docker/client.Dockerfile bin/static/client \
#     | docker build -f docker/client.Dockerfile -t client:latest -
# (`make docker-image` does exactly this), or with the whole repo as context:
#   docker build -f docker/client.Dockerfile -t client:latest .
#
# Configuration and data are NOT part of the image: mount the INI at
# /config/client.ini and the agency's bets at /data/agency.csv with
# CLI_DATA_FILE=/data/agency.csv, and set CLI_ID (scripts/generar-compose.sh
# does all of this). The program handles SIGTERM itself as PID 1.
FROM scratch
COPY bin/static/client /client
ENTRYPOINT ["/client", "--config", "/config/client.ini"]
