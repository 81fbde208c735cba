# shellcheck shell=bash
# Shared by the scripts in scripts/image/ (sourced, not run).
# buildah runs here as root with chroot isolation: no daemon and no user namespaces needed.
# Its storage is the machine's default (containers-storage in /var/lib/containers, overlay where
# the kernel allows it, else vfs, which containers-storage picks by itself).

export BUILDAH_ISOLATION=chroot

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
IMAGE="${IMAGE:-localhost/fleet-guard:latest}"
CACHE_DIR="${CACHE_DIR:-$REPO_ROOT/.cache/image}"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# timed LABEL CMD...: run CMD, then print how long it took.
timed() {
    local label="$1" start rc=0
    shift
    start=$(date +%s)
    log "$label"
    "$@" || rc=$?
    log "$label: $(( $(date +%s) - start ))s$([ "$rc" -eq 0 ] || echo " (failed, exit $rc)")"
    return "$rc"
}

require_root() {
    [ "$(id -u)" -eq 0 ] || die "$(basename "$0") needs root (buildah's vfs storage and chroot isolation, debootstrap); run it with sudo"
}

# ensure_tools TOOL...: install Debian's packages for missing tools (a new machine has none).
ensure_tools() {
    local missing=() tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install them"
    log "installing ${missing[*]} with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

image_exists() { buildah inspect --type image "$1" >/dev/null 2>&1; }

# Fields of pyproject.toml and the package, read without importing the package.
package_version() {
    python3 - "$REPO_ROOT/lib/fleet_guard/__init__.py" <<'PY'
import ast, sys
tree = ast.parse(open(sys.argv[1], encoding="utf-8").read())
for node in tree.body:
    if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__version__" for t in node.targets):
        print(ast.literal_eval(node.value))
        break
else:
    sys.exit("no __version__ in " + sys.argv[1])
PY
}

project_field() {  # project_field description | project_field source-url
    python3 - "$REPO_ROOT/pyproject.toml" "$1" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
if sys.argv[2] == "description":
    print(project.get("description", ""))
else:
    urls = {k.lower(): v for k, v in project.get("urls", {}).items()}
    print(next((urls[k] for k in ("source", "repository", "homepage") if k in urls), ""))
PY
}
