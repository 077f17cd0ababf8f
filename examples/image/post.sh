#!/bin/bash
# Runs on the live ISO after the seed is installed and images are precached.
set -euo pipefail
echo "factory-line-1: installation finished at $(date -u +%FT%TZ)" >> /var/log/factory.log
