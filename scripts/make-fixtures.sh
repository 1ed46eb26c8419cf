#!/usr/bin/env bash
# Builds the committed fixture images with real tools (gcc, umoci, skopeo, jq).
#
#   npm run fixtures            (= bash scripts/make-fixtures.sh)
#
# Output (committed, regenerate only on purpose):
#   fixtures/layouts/busybox           OCI layout, linux/amd64, 3 layers, tag "latest"
#   fixtures/layouts/multiarch         OCI layout whose "latest" is an OCI image index:
#                                      linux/amd64, linux/arm64/v8, linux/arm/v7
#   fixtures/archives/busybox.oci.tar     oci-archive of fixtures/layouts/busybox
#   fixtures/archives/busybox.docker.tar  docker-archive of the same image (skopeo), tag busybox:latest
#   fixtures/fixtures.json             digests, sizes and media types of all of the above
#
# The "busybox" image does NOT contain busybox (its 1 MB compressed binary would blow the 3 MB
# budget for committed fixtures). It contains a tiny freestanding static x86_64 program built from
# fixtures/src/hello.c (`/bin/hello` prints a greeting; `/bin/cat FILE...` prints files), plus
# files chosen to exercise layer application: see fixtures/README.md.
#
# Determinism: file mtimes, config `created` and history timestamps are fixed (FIXTURE_DATE), the
# random data file is a fixed AES-CTR keystream, and the oci-archive is written with GNU tar
# --sort=name --mtime. gzip output depends on umoci's compressor version.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FIX="$REPO/fixtures"
FIXTURE_DATE='2024-01-01T00:00:00Z'

die() {
  echo "make-fixtures: $*" >&2
  exit 1
}
log() { echo "make-fixtures: $*" >&2; }

for tool in gcc umoci skopeo jq sha256sum openssl tar; do
  command -v "$tool" >/dev/null 2>&1 || die "missing tool '$tool' (apt-get install gcc umoci skopeo jq openssl)"
done
[[ $(id -u) == 0 ]] || die 'run as root: umoci unpack/repack must preserve uid 0 ownership'

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ocipull-fixtures.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# --- helpers -----------------------------------------------------------------------------------

# Normalise mtimes of a rootfs so that layer tars are reproducible.
normalise_times() {
  find "$1" -exec touch -h -d "$FIXTURE_DATE" {} +
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# write_blob LAYOUT FILE -> prints "sha256:<hex> <size>"; stores FILE as a blob of LAYOUT.
write_blob() {
  local layout=$1 file=$2 hex size
  hex=$(sha256_of "$file")
  size=$(stat -c %s "$file")
  cp "$file" "$layout/blobs/sha256/$hex"
  echo "sha256:$hex $size"
}

# make_tar DIR OUT: a reproducible uncompressed ustar archive of DIR's contents (for
# `umoci raw add-layer`; `umoci insert` in umoci 0.4.7 writes tars without padding and trailer).
make_tar() {
  normalise_times "$1"
  (cd "$1" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort) >"$WORK/tar-list"
  tar -C "$1" --format=ustar --owner=0 --group=0 --numeric-owner --no-recursion \
    --mtime="$FIXTURE_DATE" -cf "$2" -T "$WORK/tar-list"
}

# Blob path of a digest in a layout.
blob_path() { echo "$1/blobs/sha256/${2#sha256:}"; }

# Manifest descriptor (JSON) of a tag in a layout.
tag_descriptor() {
  jq -ce --arg t "$2" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t)' \
    "$1/index.json" || die "tag $2 not found in $1"
}

# replace_manifest LAYOUT TAG FILE: stores FILE as the new manifest of TAG and repoints index.json.
replace_manifest() {
  local layout=$1 tag=$2 file=$3 digest size
  read -r digest size < <(write_blob "$layout" "$file")
  jq -c --arg t "$tag" --arg d "$digest" --argjson s "$size" \
    '.manifests |= map(if .annotations["org.opencontainers.image.ref.name"] == $t
                       then .digest = $d | .size = $s else . end)' \
    "$layout/index.json" >"$WORK/index.json.new"
  mv "$WORK/index.json.new" "$layout/index.json"
}

# manifest_path LAYOUT TAG: path of the manifest blob of TAG.
manifest_path() { blob_path "$1" "$(tag_descriptor "$1" "$2" | jq -r .digest)"; }

# add_media_type LAYOUT TAG: umoci 0.4.7 omits the (optional, but recommended and near universal)
# "mediaType" field of image manifests; add it as the second key, as other tools write it.
add_media_type() {
  local layout=$1 tag=$2
  jq -cj '{schemaVersion, mediaType: "application/vnd.oci.image.manifest.v1+json"} + del(.mediaType)' \
    "$(manifest_path "$layout" "$tag")" >"$WORK/manifest-$tag.json"
  replace_manifest "$layout" "$tag" "$WORK/manifest-$tag.json"
}

# set_variant LAYOUT TAG VARIANT: rewrites the config blob of TAG with a "variant" field and the
# manifest that points at it (umoci 0.4.7 has no --variant).
set_variant() {
  local layout=$1 tag=$2 variant=$3 manifest cdigest csize
  manifest=$(manifest_path "$layout" "$tag")
  # Insert "variant" right after "architecture"; compact output, as umoci writes it.
  jq -cj --arg v "$variant" \
    'to_entries | map(if .key == "architecture" then [., {key: "variant", value: $v}] else [.] end)
     | add | from_entries' "$(blob_path "$layout" "$(jq -r .config.digest "$manifest")")" >"$WORK/config-$tag.json"
  read -r cdigest csize < <(write_blob "$layout" "$WORK/config-$tag.json")
  jq -cj --arg d "$cdigest" --argjson s "$csize" '.config.digest = $d | .config.size = $s' \
    "$manifest" >"$WORK/manifest-$tag.json"
  replace_manifest "$layout" "$tag" "$WORK/manifest-$tag.json"
}

# --- the tiny program --------------------------------------------------------------------------

log 'building fixtures/src/hello.c'
gcc -Os -ffreestanding -static -nostdlib -fno-stack-protector -fno-pie -no-pie \
  -fno-asynchronous-unwind-tables -Wl,--build-id=none -s \
  -o "$WORK/hello" "$FIX/src/hello.c"
[[ "$("$WORK/hello")" == 'hello from the ocipull fixture image' ]] || die 'hello binary does not work'

# --- busybox: single-arch linux/amd64, 3 layers -----------------------------------------------

L="$WORK/busybox"
B="$WORK/bundle"
umoci init --layout "$L"
umoci new --image "$L:latest"
umoci config --image "$L:latest" --no-history --created "$FIXTURE_DATE" \
  --os linux --architecture amd64 \
  --author 'ocipull fixtures' \
  --config.env 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --config.env 'FIXTURE=busybox' \
  --config.cmd /bin/hello \
  --config.workingdir / \
  --config.user 0:0 \
  --config.label 'org.opencontainers.image.title=ocipull fixture' \
  --config.label 'org.opencontainers.image.source=fixtures/src'

# Layer 1: base filesystem.
umoci unpack --image "$L:latest" "$B"
R="$B/rootfs"
mkdir -p "$R"/{bin,etc,tmp,root,data,opt/replaced,var/empty}
chmod 0755 "$R" "$R"/{bin,etc,root,data,opt,opt/replaced,var,var/empty}
chmod 1777 "$R/tmp"
install -m 0755 "$WORK/hello" "$R/bin/hello"
ln "$R/bin/hello" "$R/bin/hello-hardlink"
ln -s hello "$R/bin/cat"
ln -s /etc/os-release "$R/etc/os-release-link"
printf 'root:x:0:0:root:/root:/bin/hello\nnobody:x:65534:65534:nobody:/nonexistent:/bin/hello\n' >"$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$R/etc/group"
printf 'NAME="ocipull fixture"\nID=ocipull-fixture\nVERSION_ID=1\n' >"$R/etc/os-release"
printf 'motd from layer 1\n' >"$R/etc/motd"
printf 'this file is deleted by layer 2 (whiteout)\n' >"$R/etc/removed-in-layer2"
printf 'replaced by layer 3 (opaque directory)\n' >"$R/opt/replaced/old-file"
printf 'owned by nobody\n' >"$R/data/nobody-file"
chown 65534:65534 "$R/data/nobody-file"
chmod 0640 "$R/data/nobody-file"
# 256 KiB of incompressible but reproducible data so that the layer spans many read chunks.
head -c 262144 /dev/zero |
  openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv 00000000000000000000000000000000 \
    >"$R/data/random.bin"
chmod 0644 "$R/data/random.bin"
normalise_times "$R"
umoci repack --image "$L:latest" --history.created "$FIXTURE_DATE" \
  --history.created_by 'make-fixtures: layer 1 (base filesystem)' "$B"
rm -rf "$B"

# Layer 2: modify, add, delete (plain whiteout).
umoci unpack --image "$L:latest" "$B"
R="$B/rootfs"
printf 'motd from layer 2\n' >"$R/etc/motd"
printf 'added by layer 2\n' >"$R/etc/added-in-layer2"
rm "$R/etc/removed-in-layer2"
normalise_times "$R"
umoci repack --image "$L:latest" --history.created "$FIXTURE_DATE" \
  --history.created_by 'make-fixtures: layer 2 (modify, add, whiteout)' "$B"
rm -rf "$B"

# Layer 3: opaque directory /opt/replaced (hand-made tar: umoci repack never emits opaque whiteouts).
mkdir -p "$WORK/layer3/opt/replaced"
printf 'added by layer 3 (opaque directory)\n' >"$WORK/layer3/opt/replaced/new-file"
: >"$WORK/layer3/opt/replaced/.wh..wh..opq"
chmod 0755 "$WORK/layer3/opt" "$WORK/layer3/opt/replaced"
chmod 0644 "$WORK/layer3/opt/replaced/new-file" "$WORK/layer3/opt/replaced/.wh..wh..opq"
make_tar "$WORK/layer3" "$WORK/layer3.tar"
umoci raw add-layer --image "$L:latest" --history.created "$FIXTURE_DATE" --history.author 'ocipull fixtures' \
  --history.created_by 'make-fixtures: layer 3 (opaque directory)' "$WORK/layer3.tar"
add_media_type "$L" latest
umoci gc --layout "$L"

# --- multiarch: OCI index of three platforms -------------------------------------------------

M="$WORK/multiarch"
cp -a "$L" "$M"
# platform triples: tag os arch variant
PLATFORMS=('linux-amd64 linux amd64 -' 'linux-arm64-v8 linux arm64 v8' 'linux-arm-v7 linux arm v7')
for p in "${PLATFORMS[@]}"; do
  read -r tag os arch variant <<<"$p"
  umoci config --image "$M:latest" --tag "$tag" --no-history --os "$os" --architecture "$arch" \
    --config.env "FIXTURE=multiarch"
  platform="$os/$arch"
  if [[ $variant != - ]]; then platform="$platform/$variant"; fi
  mkdir -p "$WORK/platform-$tag/etc"
  printf '%s\n' "$platform" >"$WORK/platform-$tag/etc/platform"
  chmod 0755 "$WORK/platform-$tag/etc"
  chmod 0644 "$WORK/platform-$tag/etc/platform"
  make_tar "$WORK/platform-$tag" "$WORK/platform-$tag.tar"
  umoci raw add-layer --image "$M:$tag" --history.created "$FIXTURE_DATE" --history.author 'ocipull fixtures' \
    --history.created_by "make-fixtures: /etc/platform = $platform" "$WORK/platform-$tag.tar"
  if [[ $variant != - ]]; then set_variant "$M" "$tag" "$variant"; fi
  add_media_type "$M" "$tag"
done
umoci rm --image "$M:latest"
umoci gc --layout "$M"

# Build the image index from the per-platform manifests, in PLATFORMS order.
manifests='[]'
for p in "${PLATFORMS[@]}"; do
  read -r tag os arch variant <<<"$p"
  desc=$(tag_descriptor "$M" "$tag")
  manifests=$(jq -c --argjson d "$desc" --arg os "$os" --arg arch "$arch" --arg v "$variant" \
    '. + [{mediaType: $d.mediaType, digest: $d.digest, size: $d.size,
           platform: ({architecture: $arch, os: $os} + (if $v == "-" then {} else {variant: $v} end))}]' \
    <<<"$manifests")
done
jq -cjn --argjson m "$manifests" \
  '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: $m}' >"$WORK/index-blob.json"
read -r idigest isize < <(write_blob "$M" "$WORK/index-blob.json")
# The layout's index.json keeps only "latest" -> the image index (the per-platform manifests stay
# reachable through it).
jq -cn --arg d "$idigest" --argjson s "$isize" \
  '{schemaVersion: 2, manifests: [{mediaType: "application/vnd.oci.image.index.v1+json", digest: $d, size: $s,
    annotations: {"org.opencontainers.image.ref.name": "latest"}}]}' >"$M/index.json"
umoci gc --layout "$M"

# index.json of both layouts: add the recommended mediaType too.
for layout in "$L" "$M"; do
  jq -c '{schemaVersion, mediaType: "application/vnd.oci.image.index.v1+json"} + del(.mediaType)' \
    "$layout/index.json" >"$WORK/index.json.new"
  mv "$WORK/index.json.new" "$layout/index.json"
done

# --- archives --------------------------------------------------------------------------------

mkdir -p "$WORK/archives"
tar -C "$L" --sort=name --mtime="$FIXTURE_DATE" --owner=0 --group=0 --numeric-owner --mode='u+rw,go+r,go-w' \
  --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  -cf "$WORK/archives/busybox.oci.tar" oci-layout index.json blobs
skopeo --insecure-policy copy --quiet "oci:$L:latest" "docker-archive:$WORK/archives/busybox.docker.tar:busybox:latest"

# --- verify with skopeo and install into fixtures/ --------------------------------------------

for ref in "oci:$L:latest" "oci-archive:$WORK/archives/busybox.oci.tar:latest" \
  "docker-archive:$WORK/archives/busybox.docker.tar"; do
  skopeo inspect --config "$ref" | jq -e '.architecture == "amd64" and .os == "linux"' >/dev/null ||
    die "skopeo cannot read $ref"
done
skopeo inspect --raw "oci:$M:latest" | jq -e '.manifests | length == 3' >/dev/null || die 'bad multiarch index'
for a in amd64 arm64 arm; do
  skopeo --override-arch "$a" inspect --config "oci:$M:latest" | jq -e --arg a "$a" '.architecture == $a' >/dev/null ||
    die "multiarch: platform $a not selectable"
done

find "$L" "$M" -type f -exec chmod 0644 {} +
find "$L" "$M" -type d -exec chmod 0755 {} +
chmod 0644 "$WORK"/archives/*
rm -rf "$FIX/layouts/busybox" "$FIX/layouts/multiarch" "$FIX/archives"
mkdir -p "$FIX/layouts"
cp -a "$L" "$FIX/layouts/busybox"
cp -a "$M" "$FIX/layouts/multiarch"
cp -a "$WORK/archives" "$FIX/archives"

# --- fixtures.json: what tests can assert against ---------------------------------------------

describe_image() { # LAYOUT MANIFEST_DIGEST
  local layout=$1 md=$2 mf
  mf=$(blob_path "$layout" "$md")
  jq -c --arg d "$md" --argjson s "$(stat -c %s "$mf")" --slurpfile cfg "$(blob_path "$layout" "$(jq -r .config.digest "$mf")")" \
    '{digest: $d, size: $s, mediaType: .mediaType, config: .config,
      platform: ({os: $cfg[0].os, architecture: $cfg[0].architecture} + (if $cfg[0].variant then {variant: $cfg[0].variant} else {} end)),
      layers: .layers, diffIds: $cfg[0].rootfs.diff_ids}' "$mf"
}
bb_digest=$(jq -r '.manifests[0].digest' "$FIX/layouts/busybox/index.json")
ma_digest=$(jq -r '.manifests[0].digest' "$FIX/layouts/multiarch/index.json")
ma_images='[]'
for d in $(jq -r '.manifests[].digest' "$(blob_path "$FIX/layouts/multiarch" "$ma_digest")"); do
  ma_images=$(jq -c --argjson i "$(describe_image "$FIX/layouts/multiarch" "$d")" '. + [$i]' <<<"$ma_images")
done
jq -n --argjson bb "$(describe_image "$FIX/layouts/busybox" "$bb_digest")" \
  --arg mad "$ma_digest" --argjson mas "$(stat -c %s "$(blob_path "$FIX/layouts/multiarch" "$ma_digest")")" \
  --argjson mai "$ma_images" \
  --arg ocisha "sha256:$(sha256_of "$FIX/archives/busybox.oci.tar")" \
  --arg dockersha "sha256:$(sha256_of "$FIX/archives/busybox.docker.tar")" \
  '{
    "//": "generated by scripts/make-fixtures.sh; do not edit",
    busybox: ($bb + {layout: "fixtures/layouts/busybox", tag: "latest"}),
    multiarch: {layout: "fixtures/layouts/multiarch", tag: "latest", digest: $mad, size: $mas,
                mediaType: "application/vnd.oci.image.index.v1+json", manifests: $mai},
    archives: {
      oci: {path: "fixtures/archives/busybox.oci.tar", sha256: $ocisha},
      docker: {path: "fixtures/archives/busybox.docker.tar", sha256: $dockersha, repoTag: "busybox:latest"}
    }
  }' >"$FIX/fixtures.json"

log "done: $(du -sh "$FIX" | cut -f1) in fixtures/"
log "busybox   $bb_digest"
log "multiarch $ma_digest"
