# The proxy of deploy/compose.yaml: Debian's haproxy package (the one tests/e2e/test_replicas.py runs), with
# deploy/haproxy.cfg mounted read-only at /etc/haproxy/haproxy.cfg. Runs as Debian's haproxy user on port 8080.
FROM debian:bookworm-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends haproxy \
    && rm -rf /var/lib/apt/lists/*

USER haproxy
EXPOSE 8080
# -W: master-worker (reload with SIGUSR2), -db: stay in the foreground, logging to stdout.
CMD ["haproxy", "-W", "-db", "-f", "/etc/haproxy/haproxy.cfg"]
