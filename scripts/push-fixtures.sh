#!/usr/bin/env bash
# Pushes the committed fixture images to a registry with skopeo, then verifies each tag with
# `skopeo inspect --raw` and prints a summary.
#
# Usage: scripts/push-fixtures.sh HOST:PORT [skopeo --dest-* flags...]
#   e.g. scripts/push-fixtures.sh 127.0.0.1:5101 --dest-tls-verify=false
#        scripts/push-fixtures.sh 127.0.0.1:5102 --dest-cert-dir .cache/rig/tls-basic/certs \
#          --dest-creds testuser:testpass
# The --dest-X flags are passed to `skopeo copy` and, as --X, to `skopeo inspect`.
# Env: OCIPULL_PUSH_SUMMARY=FILE writes the summary as JSON:
#   {"busybox:oci": {"ref": "HOST/busybox:oci", "digest": "sha256:…", "mediaType": "…", "size": N}, …}
#
# Pushed (repository:tag -> manifest type):
#   busybox:oci            OCI manifest, gzip layers (same digest as fixtures/layouts/busybox)
#   busybox:v2s2           Docker schema 2 manifest (skopeo --format v2s2)
#   busybox:zstd           OCI manifest, zstd layers
#   busybox:uncompressed   OCI manifest, uncompressed tar layers
#   multiarch:oci          OCI image index of 3 platforms (same digest as fixtures/layouts/multiarch)
#   multiarch:docker       Docker manifest list of 3 Docker schema 2 manifests (--all --format v2s2)
#   public/busybox:latest  same as busybox:oci; anonymously pullable from the token-mode rig
#
# skopeo 1.9.3 ignores --dest-compress-format/--dest-decompress when it can reuse (mount) a blob
# that already exists in the registry, so zstd and uncompressed variants are first converted into
# temporary local copies (oci: layout for zstd, dir: for uncompressed) and then pushed with
# --preserve-digests.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LAYOUTS="$REPO/fixtures/layouts"

die() {
  echo "push-fixtures: $*" >&2
  exit 1
}

[[ $# -ge 1 && $1 != -* ]] || die 'usage: push-fixtures.sh HOST:PORT [skopeo --dest-* flags...]'
HOST=$1
shift
DEST_FLAGS=("$@")
SRC_FLAGS=()
for f in "$@"; do
  if [[ $f == --dest-* ]]; then SRC_FLAGS+=("--${f#--dest-}"); else SRC_FLAGS+=("$f"); fi
done

for tool in skopeo jq sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die "missing tool '$tool'"
done
[[ -f $LAYOUTS/busybox/index.json && -f $LAYOUTS/multiarch/index.json ]] ||
  die "fixtures missing under $LAYOUTS (run: npm run fixtures)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ocipull-push.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# --insecure-policy: no /etc/containers/policy.json is needed (and none is consulted).
SKOPEO=(skopeo --insecure-policy)

copy() { # SRC DEST_TAG [extra copy flags]
  local src=$1 dest=$2
  shift 2
  echo "push-fixtures: $src -> $HOST/$dest" >&2
  "${SKOPEO[@]}" copy --quiet --retry-times 2 "${DEST_FLAGS[@]}" "$@" "$src" "docker://$HOST/$dest" >&2 ||
    die "skopeo copy to $HOST/$dest failed"
}

# Local conversions (see header).
"${SKOPEO[@]}" copy --quiet --dest-compress-format zstd "oci:$LAYOUTS/busybox:latest" "oci:$WORK/zstd:latest"
# --dest-decompress only works for the dir: transport (not oci:).
"${SKOPEO[@]}" copy --quiet --dest-decompress "oci:$LAYOUTS/busybox:latest" "dir:$WORK/uncompressed"

copy "oci:$LAYOUTS/busybox:latest" busybox:oci --preserve-digests
copy "oci:$LAYOUTS/busybox:latest" busybox:v2s2 --format v2s2
copy "oci:$WORK/zstd:latest" busybox:zstd --preserve-digests
copy "dir:$WORK/uncompressed" busybox:uncompressed --preserve-digests
copy "oci:$LAYOUTS/multiarch:latest" multiarch:oci --all --preserve-digests
copy "oci:$LAYOUTS/multiarch:latest" multiarch:docker --all --format v2s2
copy "oci:$LAYOUTS/busybox:latest" public/busybox:latest --preserve-digests

# --- verify ----------------------------------------------------------------------------------

OCI_M=application/vnd.oci.image.manifest.v1+json
OCI_I=application/vnd.oci.image.index.v1+json
D_M=application/vnd.docker.distribution.manifest.v2+json
D_L=application/vnd.docker.distribution.manifest.list.v2+json
OCI_L=application/vnd.oci.image.layer.v1.tar
D_LGZ=application/vnd.docker.image.rootfs.diff.tar.gzip
PLATFORMS='["linux/amd64","linux/arm64/v8","linux/arm/v7"]'

# tag | expected manifest media type | jq check on the raw manifest
CHECKS=(
  "busybox:oci|$OCI_M|[.layers[].mediaType] | all(. == \"$OCI_L+gzip\")"
  "busybox:v2s2|$D_M|[.layers[].mediaType] | all(. == \"$D_LGZ\")"
  "busybox:zstd|$OCI_M|[.layers[].mediaType] | all(. == \"$OCI_L+zstd\")"
  "busybox:uncompressed|$OCI_M|[.layers[].mediaType] | all(. == \"$OCI_L\")"
  "multiarch:oci|$OCI_I|[.manifests[] | .mediaType == \"$OCI_M\"] | all"
  "multiarch:docker|$D_L|[.manifests[] | .mediaType == \"$D_M\"] | all"
  "public/busybox:latest|$OCI_M|.layers | length == 3"
)
PLATFORM_CHECK="[.manifests[].platform | [.os, .architecture, .variant // empty] | join(\"/\")] == $PLATFORMS"

summary='{}'
for check in "${CHECKS[@]}"; do
  IFS='|' read -r tag want filter <<<"$check"
  raw="$WORK/raw.json"
  "${SKOPEO[@]}" inspect --raw "${SRC_FLAGS[@]}" "docker://$HOST/$tag" >"$raw" ||
    die "skopeo inspect --raw $HOST/$tag failed"
  got=$(jq -r '.mediaType // "(none)"' "$raw")
  [[ $got == "$want" ]] || die "$HOST/$tag: mediaType $got, expected $want"
  jq -e "$filter" "$raw" >/dev/null || die "$HOST/$tag: check failed: $filter"
  if [[ $tag == multiarch:* ]]; then
    jq -e "$PLATFORM_CHECK" "$raw" >/dev/null || die "$HOST/$tag: platforms are not $PLATFORMS"
  fi
  digest="sha256:$(sha256sum "$raw" | cut -d' ' -f1)"
  summary=$(jq -c --arg k "$tag" --arg r "$HOST/$tag" --arg d "$digest" --arg m "$got" \
    --argjson s "$(stat -c %s "$raw")" '.[$k] = {ref: $r, digest: $d, mediaType: $m, size: $s}' <<<"$summary")
done

# Tags pushed with --preserve-digests must keep the committed digests.
for pair in "busybox:oci|busybox" "multiarch:oci|multiarch" "public/busybox:latest|busybox"; do
  IFS='|' read -r tag layout <<<"$pair"
  want=$(jq -r '.manifests[0].digest' "$LAYOUTS/$layout/index.json")
  got=$(jq -r --arg k "$tag" '.[$k].digest' <<<"$summary")
  [[ $got == "$want" ]] || die "$HOST/$tag: digest $got differs from fixtures/layouts/$layout ($want)"
done

if [[ -n ${OCIPULL_PUSH_SUMMARY:-} ]]; then
  jq . <<<"$summary" >"$OCIPULL_PUSH_SUMMARY"
fi
echo "pushed to $HOST:"
jq -r 'to_entries[] | [.key, .value.mediaType, .value.digest] | @tsv' <<<"$summary" |
  awk -F'\t' '{ printf "  %-22s %-58s %s\n", $1, $2, $3 }'
