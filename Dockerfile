# Multi-stage build of the demo binaries from this workspace.
#   docker build --target demo-provider -t erpc-demo-provider .
#   docker build --target demo-consumer -t erpc-demo-consumer .
FROM rust:1.90-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p demo-provider -p demo-consumer

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 erpc
USER erpc

FROM runtime AS demo-provider
COPY --from=build /src/target/release/demo-provider /usr/local/bin/demo-provider
EXPOSE 9000
ENTRYPOINT ["demo-provider"]

FROM runtime AS demo-consumer
COPY --from=build /src/target/release/demo-consumer /usr/local/bin/demo-consumer
ENTRYPOINT ["demo-consumer"]
