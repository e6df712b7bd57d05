# syntax=docker/dockerfile:1
# Multi-stage build: a static pubgate binary on a distroless, non-root base.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/pubgate ./cmd/pubgate
# /data holds state pubgate creates (the local CA, ACME certificates, the
# audit log); a volume mounted there starts out owned by the nonroot user.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pubgate /usr/local/bin/pubgate
COPY --from=build --chown=nonroot:nonroot /out/data /data
# Mount your configuration here; it must listen on 0.0.0.0:6380 (or [::]) to
# be reachable from outside the container. Mount policies beside it (policy
# paths are relative to the configuration file); pubgate reloads them when
# the mounted files change:
#   docker run -v $PWD/pubgate.yaml:/etc/pubgate/pubgate.yaml:ro \
#     -v $PWD/policies:/etc/pubgate/policies:ro -p 6380:6380 pubgate
USER nonroot:nonroot
# 6380: clients (TLS). 9090: admin (/metrics, /healthz, /readyz) when
# admin.address enables it.
EXPOSE 6380 9090
ENTRYPOINT ["/usr/local/bin/pubgate"]
CMD ["serve", "--config", "/etc/pubgate/pubgate.yaml"]
