# dialtone in a container: `dialtone serve` (Twilio-compatible REST API, hosted numbers, status
# callbacks, recordings, web page on :2010) with the reference voice app built in.
#
#   docker build -t dialtone .
#   docker run --rm -p 127.0.0.1:2010:2010 dialtone
#
# Configure with environment variables (see docs/serve.md): DIALTONE_VOICE_URL (your app's
# voice webhook for +15005550001), TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN, DIALTONE_CONFIG
# (a TOML file mounted into the container), DIALTONE_PUBLIC_URL.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p dialtone \
 && cp target/release/dialtone /usr/local/bin/dialtone

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 dialtone
COPY --from=build /usr/local/bin/dialtone /usr/local/bin/dialtone
USER dialtone
# Inside a container the server must listen beyond loopback; publish the port on the host's
# 127.0.0.1 (as docker-compose.yml does) to keep it local.
ENV DIALTONE_LISTEN=0.0.0.0:2010
EXPOSE 2010
HEALTHCHECK --interval=10s --timeout=3s CMD ["dialtone", "--version"]
ENTRYPOINT ["dialtone"]
CMD ["serve"]
