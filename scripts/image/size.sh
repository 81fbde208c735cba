#!/usr/bin/env bash
# Measure what the Dockerfile adds on top of its base image, from the image's layers, print it,
# and fail if it is over the budget. Needs root.
#   scripts/image/size.sh [IMAGE]       (default $IMAGE, localhost/fleet-guard:latest)
# Env: MAX_ADDED_MB (default 30; MB = 10^6 bytes).
# The base is the image named by the org.opencontainers.image.base.name label; its layers must
# be the first layers of IMAGE. Each added layer is measured as an uncompressed tar (about the
# space it takes unpacked) and gzipped too (about what a registry transfers).
set -euo pipefail
# shellcheck source=scripts/image/lib.sh
. "$(dirname "$0")/lib.sh"

image="${1:-$IMAGE}"
max_mb="${MAX_ADDED_MB:-30}"
require_root
image_exists "$image" || die "no image $image: run 'make image' first"

base="$(buildah inspect --type image --format '{{index .OCIv1.Config.Labels "org.opencontainers.image.base.name"}}' "$image")"
[ -n "$base" ] || die "$image has no org.opencontainers.image.base.name label"
image_exists "$base" || die "the base image $base is not in local storage"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
diff_ids() { buildah inspect --type image --format '{{range .OCIv1.RootFS.DiffIDs}}{{println .}}{{end}}' "$1"; }
diff_ids "$base" >"$out/base-ids"
diff_ids "$image" >"$out/image-ids"
# The dir: transport writes each layer as a file named by its digest; with -D, uncompressed, so
# that digest is the layer's diff id.
buildah push --quiet --disable-compression "$image" "dir:$out/layers" >/dev/null

python3 - "$out" "$image" "$base" "$max_mb" <<'PY'
import pathlib, sys, zlib

out, image, base, max_mb = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
base_ids = (out / "base-ids").read_text().split()
image_ids = (out / "image-ids").read_text().split()
if image_ids[: len(base_ids)] != base_ids:
    sys.exit(f"error: the layers of {base} are not the first layers of {image}")


def layer_file(diff_id: str) -> pathlib.Path:
    return out / "layers" / diff_id.split(":", 1)[1]


def gzipped_size(path: pathlib.Path) -> int:
    z, size = zlib.compressobj(6, zlib.DEFLATED, 31), 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            size += len(z.compress(chunk))
    return size + len(z.flush())


def mb(n: int) -> float:
    return n / 1e6


base_size = sum(layer_file(d).stat().st_size for d in base_ids)
print(f"size of {image} over its base {base}:")
print(f"  base ({len(base_ids)} layers): {mb(base_size):8.2f} MB")
total = total_gz = 0
for number, diff_id in enumerate(image_ids[len(base_ids):], start=len(base_ids) + 1):
    size, gz = layer_file(diff_id).stat().st_size, gzipped_size(layer_file(diff_id))
    total, total_gz = total + size, total_gz + gz
    print(f"  layer {number}: {mb(size):8.2f} MB ({mb(gz):.2f} MB gzipped)  {diff_id[:19]}")
print(f"  added:   {mb(total):8.2f} MB ({mb(total_gz):.2f} MB gzipped); budget {max_mb:g} MB")
if mb(total) > max_mb:
    sys.exit(f"error: the image adds {mb(total):.2f} MB to its base, over the {max_mb:g} MB budget")
PY
