# walkerd: multi-stage build. The runtime image holds two static-enough binaries (walkerd and
# walkerd-load) on Debian slim, runs as a non-root user, and writes nothing to its root
# filesystem (it can run with readOnlyRootFilesystem). It expects MONGODB_URI and
# WALKERD_JWT_SECRET; it does not include the embedded development database.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p walkerd-server --bin walkerd -p walkerd-load --bin walkerd-load

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin walkerd
COPY --from=build /src/target/release/walkerd /src/target/release/walkerd-load /usr/local/bin/
USER 10001
ENV WALKERD_BIND=0.0.0.0:8000 \
    RUST_LOG=info
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/walkerd", "--healthcheck"]
ENTRYPOINT ["/usr/local/bin/walkerd"]
