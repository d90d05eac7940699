# Docker targets of the Lotería Nacional; included by the top-level Makefile.
#
#   make docker-image         static binaries, then the images server:latest,
#                             client:latest and ncat:local (all FROM scratch:
#                             nothing is pulled, no registry is needed)
#   make docker-compose-up    starts docker-compose-dev.yaml (server + 5 agencies)
#   make docker-compose-logs  follows its logs
#   make docker-compose-down  stops it (SIGTERM, 10 s grace) and removes it
#   make test-docker          tests/docker/run.sh (skips when no Docker engine)
#
# docker-compose-dev.yaml is written by scripts/generar-compose.sh (5 agencies):
#   scripts/generar-compose.sh docker-compose-dev.yaml 5
# COMPOSE is `docker compose` when that plugin answers, else `docker-compose`;
# set it on the command line to override. It is looked up once, and only when a
# Docker target uses it.

DOCKER_COMPOSE_FILE ?= docker-compose-dev.yaml

ifeq ($(origin COMPOSE),undefined)
COMPOSE = $(eval COMPOSE := $(shell if docker compose version >/dev/null 2>&1; \
    then echo 'docker compose'; else echo docker-compose; fi))$(COMPOSE)
endif

.PHONY: docker-image docker-compose-up docker-compose-down docker-compose-logs test-docker

# Each image's build context is a tar of exactly its Dockerfile and binary.
# ncat comes from the host (scripts/install-deps.sh docker installs it).
docker-image: static
	@$(DEPS_SCRIPT) docker
	tar -c docker/server.Dockerfile bin/static/server \
	  | docker build -f docker/server.Dockerfile -t server:latest -
	tar -c docker/client.Dockerfile bin/static/client \
	  | docker build -f docker/client.Dockerfile -t client:latest -
	docker/build-ncat-image.sh ncat:local

# No --build: the compose file names prebuilt images and nothing may be pulled.
docker-compose-up: docker-image
	$(COMPOSE) -f $(DOCKER_COMPOSE_FILE) up -d

# -v also removes the bet-store volume, so the next `up` starts a new draw. A
# kept volume would do no harm: every agency would resume its source with all
# its bets already stored, send none and get the same winners
# (tests/docker/kill_mid_upload.sh checks exactly that).
docker-compose-down:
	$(COMPOSE) -f $(DOCKER_COMPOSE_FILE) stop -t 10
	$(COMPOSE) -f $(DOCKER_COMPOSE_FILE) down -v

docker-compose-logs:
	$(COMPOSE) -f $(DOCKER_COMPOSE_FILE) logs -f

# run.sh's own `make docker-image` is a top-level make again (every core).
test-docker:
	env -u MAKEFLAGS -u MAKELEVEL tests/docker/run.sh
