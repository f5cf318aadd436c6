# syntax=docker/dockerfile:1

# Build a static chit binary.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/chit ./cmd/chit

# Run it in a minimal image, as an unprivileged user (uid 65532). No shell, no curl: container
# health is for the orchestrator to probe over HTTP, not for a HEALTHCHECK command.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/chit /chit
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/chit"]
CMD ["serve", "--addr", "0.0.0.0:8080"]
