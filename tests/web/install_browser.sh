#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver for the web app's browser test (tests/web/test_serve.py).
# Part of the README's test command. Never fails the command: without apt (or root/sudo) the
# browser test is skipped and says why.
set -u
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_browser.sh: no apt-get here; the browser test will be skipped" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo -n"; fi
if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    chromium chromium-driver >/dev/null; }; then
  echo "install_browser.sh: could not install chromium; the browser test will be skipped" >&2
fi
exit 0
