# Builds the static sluice binary and runs it on a small Debian base.
#   docker build -t sluice .
#   docker compose up        (three nodes: docker-compose.yml)
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/sluice ./cmd/sluice

FROM debian:bookworm-slim
COPY --from=build /out/sluice /usr/local/bin/sluice
RUN useradd --system --home /var/lib/sluice --create-home sluice
USER sluice
WORKDIR /var/lib/sluice
VOLUME /var/lib/sluice
EXPOSE 9092 8080 7946 7946/udp 7947
ENTRYPOINT ["sluice"]
CMD ["serve", "--data-dir", "/var/lib/sluice/data", "--kafka-addr", "0.0.0.0:9092", "--http-addr", "0.0.0.0:8080"]
