# Shared by scripts/run and scripts/test (sourced, not run): install what is missing.
# shellcheck shell=bash

log() { echo "==> $*"; }

# --- root helper -------------------------------------------------------------
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "not root and no sudo: cannot install packages (will try without)" >&2
    fi
fi

# --- apt packages ------------------------------------------------------------
apt_updated=0
apt_install() {  # apt_install PKG... : installs those not yet installed
    local missing=() p
    for p in "$@"; do
        if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]; then
            missing+=("$p")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing apt packages: ${missing[*]}"
    local out
    out=$(mktemp)
    if [ $apt_updated -eq 0 ]; then
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$out" 2>&1 \
            || { cat "$out" >&2; rm -f "$out"; return 1; }
        apt_updated=1
    fi
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$out" 2>&1 \
        || { cat "$out" >&2; rm -f "$out"; return 1; }
    rm -f "$out"
}

# need_packages PKG...: installs what is missing (only on Debian-like machines).
need_packages() {
    if command -v dpkg-query >/dev/null 2>&1; then
        apt_install "$@"
    else
        echo "no dpkg: not a Debian machine, skipping package installation ($*)" >&2
    fi
}

# --- Rust toolchain and build tools (call use_rust) ---------------------------
# rustup's installer is not reachable from here, so: use rustup's cargo if it is
# there (CI's environment may lack ~/.cargo/bin in PATH), else any cargo in PATH,
# else Debian's cargo-web/rustc-web (1.96 in bookworm-security; edition 2024 needs >= 1.85).
use_rust() {
    # cmake + nasm: libjpeg-turbo, built from source by the turbojpeg crate.
    # libclang-dev + clang: bindgen, which v4l2-sys-mit (the v4l crate) runs at build time.
    need_packages build-essential pkg-config ca-certificates cmake nasm libclang-dev clang
    if [ -x "${HOME:-}/.cargo/bin/cargo" ]; then
        export PATH="${HOME:-}/.cargo/bin:$PATH"
    elif ! command -v cargo >/dev/null 2>&1; then
        need_packages cargo-web rustc-web
    fi
    log "toolchain: $(command -v cargo): $(cargo --version), $(rustc --version)"
}

