# The palisade binary (agent, tools, sandbox) on a slim runtime that carries nft and conntrack.
#   docker build -t ghcr.io/palisade-net/palisade:0.1.0 .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p palisade-cli \
 && strip target/release/palisade

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends nftables conntrack iproute2 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/palisade /usr/local/bin/palisade
ENTRYPOINT ["/usr/local/bin/palisade"]
CMD ["agent", "--help"]
