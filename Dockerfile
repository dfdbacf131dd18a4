# syntax=docker/dockerfile:1.7
#
# winback container image.
#
#   docker build -t winback .
#   docker run --rm winback config          # the config reference
#   docker run --rm -e WINBACK_KAFKA_BROKERS=... winback   # = winback run
#
# Stage 1 builds a static binary; stage 2 is distroless "static" (no shell,
# no libc, CA certificates and /etc/passwd with the nonroot user 65532).

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
# Dependencies first, so that a source change does not re-download modules.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o /out/winback ./cmd/winback

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/winback /winback
# uid:gid 65532 is "nonroot" in distroless' /etc/passwd. The Kubernetes
# manifests (deploy/k8s/deployment.yaml) run as the same ids.
USER 65532:65532
# Inside a container winback must listen on all interfaces; its own default
# (127.0.0.1:8080) is right for a laptop, not for a pod.
ENV WINBACK_HTTP_ADDR=:8080
EXPOSE 8080
# No HEALTHCHECK: the image has no shell, curl or wget to run one, and
# winback has no "probe yourself" subcommand. Orchestrators probe instead:
# GET /healthz (liveness) and GET /readyz (readiness: state restored, Kafka
# reachable, ClickHouse accepts writes) on port 8080. See deploy/k8s.
ENTRYPOINT ["/winback"]
CMD ["run"]
