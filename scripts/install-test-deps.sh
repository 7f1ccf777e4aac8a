#!/usr/bin/env bash
# Installs the real servers the tests run against, from Debian's packages.
# Nothing here starts a service: the test fixtures start each one on a loopback port.
set -euo pipefail
need=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || need+=(prometheus)
command -v victoria-metrics >/dev/null || need+=(victoria-metrics)
# Alertmanager for the end-to-end alerting test; amtool checks the routing example.
command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null \
  || need+=(prometheus-alertmanager)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# The browser tests drive Debian's Chromium through Playwright (never `playwright install`).
test -x /usr/bin/chromium || need+=(chromium)
# ApacheBench drives the serve --workers benchmark (a C client leaves the cores to serve).
command -v ab >/dev/null || need+=(apache2-utils)
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
  # Debian's packages enable services; the suite starts its own on free ports.
  for svc in prometheus prometheus-alertmanager victoria-metrics postgresql; do
    $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
    $SUDO service "$svc" stop >/dev/null 2>&1 || true
  done
fi
