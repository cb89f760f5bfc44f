# syntax=docker/dockerfile:1
# For those who build with Docker. `make images` builds the same images without a daemon.
#
#   docker build --target broker -t ghcr.io/lanyard-dev/lanyard-broker:dev .
#   docker build --target agent  -t ghcr.io/lanyard-dev/lanyard-agent:dev .
ARG GO_VERSION=1.26
FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/lanyard-broker ./cmd/broker && \
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/lanyard-agent ./cmd/agent

# Scratch images: the static binary, a non-root user, nothing else.
FROM scratch AS broker
COPY --from=build --chmod=0555 /out/lanyard-broker /lanyard-broker
USER 65532:65532
ENTRYPOINT ["/lanyard-broker"]

FROM scratch AS agent
COPY --from=build --chmod=0555 /out/lanyard-agent /lanyard-agent
USER 65532:65532
ENTRYPOINT ["/lanyard-agent"]
