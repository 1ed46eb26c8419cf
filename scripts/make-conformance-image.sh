#!/usr/bin/env bash
# Builds the conformance images with real tools (debootstrap, umoci, GNU tar) and caches them.
#
#   bash scripts/make-conformance-image.sh      (npm run fixtures:conformance)
#
# Prints, as its last line on stdout, a directory holding:
#   layout/     an OCI layout (umoci) with two tags:
#                 conformance  Debian bookworm minbase (debootstrap) + 3 layers of tar edge cases
#                 busybox      busybox-static with its applet symlinks, a non-root user, Entrypoint/Cmd
#   info.json   what was built: rootfs kind, why, and what the busybox image prints
#
# The output is not committed. It lives in .cache/conformance/<hash>-<kind>/, where <hash> is a
# hash of this script: it is built once and reused until this script changes (older outputs are
# removed). `rm -rf .cache/conformance` forces a rebuild. A lock serialises concurrent callers.
#
# Environment:
#   OCIPULL_CONFORMANCE_ROOTFS  auto (default): debootstrap when the mirror answers, else fallback;
#                               debootstrap: no fallback (fail instead); fallback: never debootstrap
#   OCIPULL_CONFORMANCE_DIR     cache directory (default .cache/conformance in the repository)
#   OCIPULL_DEBIAN_MIRROR       default http://deb.debian.org/debian
#
# The fallback rootfs is a copy of a few packages installed on this machine (their `dpkg -L`
# files), with device nodes and /etc/passwd added: smaller, but layers 2-4 are the same on top.
# Needs root (debootstrap, ownership, device nodes) and: umoci, jq, GNU tar, setfattr, flock,
# curl, debootstrap (unless fallback), busybox-static (/bin/busybox). See fixtures/README.md for the
# layers and what umoci makes of each edit.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SELF="$REPO/scripts/make-conformance-image.sh"
HASH="$(sha256sum "$SELF" | cut -c1-16)"
BASE="${OCIPULL_CONFORMANCE_DIR:-$REPO/.cache/conformance}"
MODE="${OCIPULL_CONFORMANCE_ROOTFS:-auto}"
MIRROR="${OCIPULL_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
BUSYBOX=/bin/busybox
# Packages copied from this machine for the fallback rootfs (the ones not installed are skipped).
FALLBACK_PACKAGES=(base-files base-passwd libc6 coreutils dash bash sed grep libacl1 libattr1 libselinux1
  libpcre2-8-0 libgmp10 tzdata)

die() {
  echo "make-conformance-image: $*" >&2
  exit 1
}
log() { echo "make-conformance-image: [${SECONDS}s] $*" >&2; }

case "$MODE" in auto | debootstrap | fallback) ;; *) die "OCIPULL_CONFORMANCE_ROOTFS=$MODE: want auto, debootstrap or fallback" ;; esac
[[ $(id -u) == 0 ]] || die 'run as root: debootstrap, file owners and device nodes need it'
tools=(umoci jq tar setfattr mkfifo mknod flock sha256sum findmnt)
[[ $MODE == fallback ]] || tools+=(debootstrap curl)
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || die "missing tool '$tool' (apt-get install umoci jq attr util-linux debootstrap curl)"
done
[[ -x $BUSYBOX ]] || die "missing $BUSYBOX (apt-get install busybox-static)"
"$BUSYBOX" true 2>/dev/null || die "$BUSYBOX does not run"

mkdir -p "$BASE"
BASE="$(cd "$BASE" && pwd)"
exec 9>"$BASE/.lock"
flock 9

# --- which rootfs, and is it cached? ----------------------------------------------------------

done_dir() { [[ -f $1/info.json && -f $1/layout/index.json ]]; }
# remove_tree DIR: unmounts what debootstrap may have left mounted under DIR, then removes it.
remove_tree() {
  findmnt -rn -o TARGET | { grep -F "$1/" || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
  rm -rf --one-file-system "$1"
}

KIND=debootstrap
REASON='debootstrap --variant=minbase'
if [[ $MODE == fallback ]]; then
  KIND=fallback
  REASON='forced by OCIPULL_CONFORMANCE_ROOTFS=fallback'
elif done_dir "$BASE/$HASH-debootstrap"; then
  echo "$BASE/$HASH-debootstrap"
  exit 0
elif ! curl -fsS -o /dev/null -m 20 "$MIRROR/dists/$SUITE/Release" 2>"$BASE/.mirror-error"; then
  [[ $MODE == auto ]] || die "mirror $MIRROR unreachable: $(cat "$BASE/.mirror-error")"
  KIND=fallback
  REASON="mirror $MIRROR unreachable: $(tr -d '\n' <"$BASE/.mirror-error")"
  log "$REASON; using the fallback rootfs"
fi
DEST="$BASE/$HASH-$KIND"
if done_dir "$DEST"; then
  echo "$DEST"
  exit 0
fi

# Outputs of older versions of this script, and leftovers of interrupted builds.
for old in "$BASE"/*-debootstrap "$BASE"/*-fallback "$BASE"/.build-*; do
  [[ -e $old && $old != "$BASE/$HASH-"* ]] || continue
  log "removing $old"
  remove_tree "$old"
done

WORK="$(mktemp -d "$BASE/.build-XXXXXX")"
# debootstrap mounts /proc and /sys in its target: never let rm walk into them.
trap 'remove_tree "$WORK"' EXIT

L="$WORK/layout"
B="$WORK/bundle"
R="$B/rootfs"
layer() { # TAG DESCRIPTION: umoci repack of $B as the next layer of TAG
  umoci repack --image "$L:$1" --history.created_by "make-conformance-image: $2" "$B"
  rm -rf "$B"
}
add_tar() { # TAG TARFILE DESCRIPTION: a tar made here as the next layer of TAG
  umoci raw add-layer --image "$L:$1" --history.created_by "make-conformance-image: $3" "$2"
}
# make_tar FORMAT DIR OUT PATH...: tar of DIR's PATHs in exactly this order (no recursion); user.*
# xattrs in the posix format (the gnu format has no place for them).
make_tar() {
  local format=$1 dir=$2 out=$3 xattrs=()
  shift 3
  printf '%s\n' "$@" >"$WORK/tar-list"
  [[ $format != posix ]] || xattrs=(--xattrs --xattrs-include='user.*')
  tar -C "$dir" --format="$format" "${xattrs[@]}" --numeric-owner --no-recursion -cf "$out" -T "$WORK/tar-list"
}
long() { printf "%${2}s" '' | tr ' ' "$1"; } # long CHAR N

# --- layer 1: the base rootfs -----------------------------------------------------------------

debootstrap_rootfs() { # DIR
  mkdir -p "$BASE/debs"
  log "debootstrap --variant=minbase $SUITE from $MIRROR (debs cached in $BASE/debs)"
  debootstrap --variant=minbase --cache-dir="$BASE/debs" "$SUITE" "$1" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
    tail -20 "$WORK/debootstrap.log" >&2
    return 1
  }
  if grep -qF "$1/" <<<"$(findmnt -rn -o TARGET)"; then die "debootstrap left mounts under $1"; fi
  # What Debian's own container images drop too: apt lists and caches (about 80 MB).
  rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin
}

fallback_rootfs() { # DIR
  local dir=$1 pkg p
  log "fallback rootfs: files of ${FALLBACK_PACKAGES[*]} from this machine"
  # dpkg -L names paths as packaged (/lib/...); on a merged-/usr host /lib is a symlink: rewrite
  # such top-level prefixes to the real directories (one sed, not a readlink per file).
  local rewrite=()
  for p in /bin /sbin /lib /lib32 /lib64 /libx32; do
    if [[ -L $p ]]; then rewrite+=(-e "s|^$p/|/$(readlink "$p")/|"); fi
  done
  for pkg in "${FALLBACK_PACKAGES[@]}"; do
    if [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true) == 'install ok installed' ]]; then
      dpkg -L "$pkg"
    else
      log "fallback: $pkg is not installed, skipped"
    fi
  done | grep '^/.' | sed "${rewrite[@]}" -e 's|//*|/|g' >"$WORK/files"
  [[ -s $WORK/files ]] || die 'fallback: no package files found'
  # Parents first, then children; a directory that is a symlink on this host stays a symlink.
  LC_ALL=C sort -u "$WORK/files" | sed 's|^/||' >"$WORK/files.sorted"
  mkdir -p "$dir"
  # --ignore-failed-read: dpkg path-excludes (docs, man pages) leave listed files missing.
  tar -C / --no-recursion --ignore-failed-read -cf - -T "$WORK/files.sorted" 2>/dev/null | tar -C "$dir" -xpf -
  for p in bin lib lib64 sbin; do
    if [[ -L /$p && ! -e $dir/$p ]]; then ln -s "$(readlink "/$p")" "$dir/$p"; fi
  done
  mkdir -p "$dir"/{dev,etc,home,proc,root,run,srv,sys,tmp,var/log,usr/bin}
  chmod 0755 "$dir" "$dir"/{dev,etc,home,proc,run,srv,sys,var,var/log}
  chmod 0700 "$dir/root"
  chmod 1777 "$dir/tmp"
  if [[ -f $dir/usr/share/base-passwd/passwd.master ]]; then
    cp "$dir/usr/share/base-passwd/passwd.master" "$dir/etc/passwd"
    cp "$dir/usr/share/base-passwd/group.master" "$dir/etc/group"
  else
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$dir/etc/passwd"
    printf 'root:x:0:\n' >"$dir/etc/group"
  fi
  # The device nodes debootstrap makes.
  mknod -m 0666 "$dir/dev/null" c 1 3
  mknod -m 0666 "$dir/dev/zero" c 1 5
  mknod -m 0666 "$dir/dev/random" c 1 8
  mknod -m 0666 "$dir/dev/urandom" c 1 9
  mknod -m 0666 "$dir/dev/tty" c 5 0
  ln -s /proc/self/fd "$dir/dev/fd"
  [[ -e $dir/usr/bin/env ]] || die 'fallback: no /usr/bin/env (coreutils)'
}

log "building in $WORK ($KIND)"
if [[ $KIND == debootstrap ]]; then
  if ! debootstrap_rootfs "$WORK/base"; then
    [[ $MODE == auto ]] || die 'debootstrap failed'
    KIND=fallback
    REASON="debootstrap failed (see the log above)"
    DEST="$BASE/$HASH-$KIND"
    log "$REASON; using the fallback rootfs"
    remove_tree "$WORK/base"
    if done_dir "$DEST"; then
      echo "$DEST"
      exit 0
    fi
  fi
fi
[[ $KIND == debootstrap ]] || fallback_rootfs "$WORK/base"

umoci init --layout "$L"
umoci new --image "$L:conformance"
umoci config --image "$L:conformance" --os linux \
  --config.env 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --config.env 'FIXTURE=conformance' --config.cmd /bin/sh --config.workingdir /
umoci unpack --image "$L:conformance" "$B" >/dev/null
rmdir "$R"
mv "$WORK/base" "$R"

# Seed entries that the next layers delete, replace, retype or link to.
S="$R/srv/conformance"
mkdir -p "$S"/{removed-dir/sub,opaque-dir/old-sub,opaque-late,dir-becomes-file/child-dir,existing-dir,sticky}
echo 'removed by a layer-2 whiteout' >"$S/removed-file"
echo a >"$S/removed-dir/a"
echo b >"$S/removed-dir/sub/b"
ln -s removed-file "$S/removed-symlink"
echo 'hidden by the opaque directory of layer 2' >"$S/opaque-dir/old-1"
echo 'hidden too' >"$S/opaque-dir/old-sub/old-2"
echo 'hidden by an opaque marker that comes after new entries' >"$S/opaque-late/old"
echo 'a file, then a directory' >"$S/file-becomes-dir"
echo 'in a directory that becomes a file' >"$S/dir-becomes-file/child-dir/x"
echo 'a file, then a symlink' >"$S/file-becomes-symlink"
ln -s nowhere "$S/symlink-becomes-file"
echo 'hard-linked from layer 4' >"$S/lower-target"
echo 'removed by umoci in layer 3' >"$S/umoci-removed"
echo 'keeps its children when layer 4 changes its mode' >"$S/existing-dir/child"
echo 'xattrs changed in layer 3' >"$S/xattr-changed"
setfattr -n user.layer -v 1 "$S/xattr-changed"
setfattr -n user.dropped -v 'removed in layer 3' "$S/xattr-changed"
echo 'replaced in layer 4 by a file without xattrs' >"$S/xattr-replaced"
setfattr -n user.layer -v 1 "$S/xattr-replaced"
chmod 1777 "$S/sticky"
chown 1000:1000 "$S/existing-dir"
chmod 2775 "$S/existing-dir"
layer conformance "layer 1: $KIND rootfs + /srv/conformance seed"

# --- layer 2: whiteouts and opaque directories (GNU tar, PAX format) -------------------------

T="$WORK/layer2"
C=srv/conformance
mkdir -p "$T/$C"/{opaque-dir/new-sub,opaque-late,file-becomes-dir}
: >"$T/$C/.wh.removed-file"
: >"$T/$C/.wh.removed-dir"
: >"$T/$C/.wh.removed-symlink"
: >"$T/$C/.wh.never-existed"
: >"$T/$C/opaque-dir/.wh..wh..opq"
echo 'new in the opaque directory' >"$T/$C/opaque-dir/new-1"
echo 'new too' >"$T/$C/opaque-dir/new-sub/new-2"
: >"$T/$C/opaque-late/.wh..wh..opq"
echo 'listed before the opaque marker' >"$T/$C/opaque-late/new"
echo 'now in a directory' >"$T/$C/file-becomes-dir/inside"
echo 'a directory, then a file' >"$T/$C/dir-becomes-file"
ln -s file-becomes-dir "$T/$C/file-becomes-symlink"
echo 'a symlink, then a file' >"$T/$C/symlink-becomes-file"
chmod 0750 "$T/$C/opaque-dir"
setfattr -n user.opaque -v 'set on the opaque directory' "$T/$C/opaque-dir"
chmod 0755 "$T/srv" "$T/$C" "$T/$C/opaque-dir/new-sub" "$T/$C/opaque-late" "$T/$C/file-becomes-dir"
# An opaque real Debian directory (with one new file) and a whiteout of a real directory.
mkdir -p "$T/usr/share/doc"
chmod 0755 "$T/usr" "$T/usr/share" "$T/usr/share/doc"
: >"$T/usr/share/doc/.wh..wh..opq"
echo 'the only file left in /usr/share/doc' >"$T/usr/share/doc/README.conformance"
: >"$T/usr/share/.wh.locale"
make_tar posix "$T" "$WORK/layer2.tar" \
  srv "$C" "$C/.wh.removed-file" "$C/.wh.removed-dir" "$C/.wh.removed-symlink" "$C/.wh.never-existed" \
  "$C/opaque-dir" "$C/opaque-dir/.wh..wh..opq" "$C/opaque-dir/new-1" "$C/opaque-dir/new-sub" \
  "$C/opaque-dir/new-sub/new-2" "$C/opaque-late" "$C/opaque-late/new" "$C/opaque-late/.wh..wh..opq" \
  "$C/file-becomes-dir" "$C/file-becomes-dir/inside" "$C/dir-becomes-file" "$C/file-becomes-symlink" \
  "$C/symlink-becomes-file" usr usr/share usr/share/doc usr/share/doc/.wh..wh..opq \
  usr/share/doc/README.conformance usr/share/.wh.locale
add_tar conformance "$WORK/layer2.tar" 'layer 2: whiteouts, opaque directories, type changes'

# --- layer 3: umoci repack of hardlinks, symlinks, special modes, owners, fifo, long paths -----

umoci unpack --image "$L:conformance" "$B" >/dev/null
S="$R/srv/conformance"
mkdir -p "$S"/{links,symlinks,modes,owners,special}
# Hardlinks within the layer (with an xattr, which umoci repeats on every link).
echo 'one inode, three names' >"$S/links/h1"
ln "$S/links/h1" "$S/links/h2"
ln "$S/links/h1" "$S/links/h3"
setfattr -n user.shared -v 'on the inode' "$S/links/h1"
# A hardlink to a lower-layer file: umoci repack sees the lower file's link count change and
# writes it again, so the layer holds a regular file and a hardlink to it (see fixtures/README.md).
ln "$R/usr/bin/env" "$S/links/env-hardlink"
# Symlinks: relative, absolute, dangling, to a directory, a chain, and one climbing above the root.
ln -s ../links/h1 "$S/symlinks/relative"
ln -s /srv/conformance/links/h1 "$S/symlinks/absolute"
ln -s /does/not/exist "$S/symlinks/dangling"
ln -s ../links "$S/symlinks/to-dir"
ln -s relative "$S/symlinks/chain"
ln -s ../../../../../../etc/passwd "$S/symlinks/above-root"
# Special modes.
cp "$R/usr/bin/env" "$S/modes/setuid"
chmod 4755 "$S/modes/setuid"
cp "$R/usr/bin/env" "$S/modes/setgid"
chmod 2755 "$S/modes/setgid"
echo 'setuid and setgid, not executable by others' >"$S/modes/both"
chmod 6750 "$S/modes/both"
mkdir "$S/modes/sticky-dir" "$S/modes/setgid-dir"
chmod 1777 "$S/modes/sticky-dir"
chmod 2775 "$S/modes/setgid-dir"
echo 'no permissions at all' >"$S/modes/mode-0000"
chmod 0000 "$S/modes/mode-0000"
: >"$S/modes/empty"
# Owners.
echo 'uid 1000, gid 1000' >"$S/owners/u1000"
chown 1000:1000 "$S/owners/u1000"
echo 'uid 1000, gid 1001' >"$S/owners/u1000-g1001"
chown 1000:1001 "$S/owners/u1000-g1001"
echo 'root, gid 1000' >"$S/owners/g1000"
chown 0:1000 "$S/owners/g1000"
mkdir "$S/owners/dir-1000"
chown 1000:1000 "$S/owners/dir-1000"
ln -s u1000 "$S/owners/symlink-1000"
chown -h 1000:1000 "$S/owners/symlink-1000"
# A fifo, odd names, a deep path (467 bytes: a PAX path record), xattrs.
mkfifo -m 0620 "$S/special/fifo"
echo 'a name that is not UTF-8' >"$S/special/caf$(printf '\351')"
echo 'spaces and a backslash' >"$S/special/with spaces and \\"
DEEP="$S/special/$(long d 120)/$(long e 120)/$(long f 120)"
mkdir -p "$DEEP"
echo 'deep (PAX path)' >"$DEEP/$(long g 80)"
setfattr -n user.deep -v 'xattr on a deep path' "$DEEP/$(long g 80)"
mkdir "$S/special/xattr-dir"
setfattr -n user.on-a-dir -v 'directory xattr' "$S/special/xattr-dir"
setfattr -n user.binary -v 0x00ff10fe "$S/special/xattr-dir"
# Edits of layer-1 entries: xattrs changed and one dropped, a file removed (umoci's whiteout).
setfattr -n user.layer -v 3 "$S/xattr-changed"
setfattr -x user.dropped "$S/xattr-changed"
rm "$S/umoci-removed"
layer conformance 'layer 3: hardlinks, symlinks, modes, owners, fifo, long names, xattrs'

# --- layer 4: GNU tar format: long names and link names, hardlinks to lower layers -------------

T="$WORK/layer4"
G=srv/conformance/gnu
mkdir -p "$T/$G/$(long h 110)/$(long i 110)" "$T/usr/bin" "$T/$C/links" "$T/$C/existing-dir"
GLONG="$G/$(long h 110)/$(long i 110)/$(long j 90)"
echo 'deep (GNU long name)' >"$T/$GLONG"
ln "$T/$GLONG" "$T/$G/long-hardlink"
ln -s "/$GLONG" "$T/$G/long-symlink"
# Hardlinks whose targets only exist in lower layers: archive target + link, then delete the
# target's member, so the link entry names a file of layer 1.
echo 'placeholder, deleted from the tar' >"$T/$C/lower-target"
ln "$T/$C/lower-target" "$T/$G/lower-hardlink"
echo 'placeholder, deleted from the tar' >"$T/usr/bin/env"
ln "$T/usr/bin/env" "$T/$G/env-hardlink"
# Replace one name of layer 3's hardlink group, and a file that had xattrs.
echo 'h2 replaced in layer 4; h1 and h3 keep the old inode' >"$T/$C/links/h2"
echo 'replaced, without xattrs' >"$T/$C/xattr-replaced"
chown 0:1000 "$T/$C/existing-dir"
chmod 0750 "$T/$C/existing-dir"
chmod 0755 "$T/srv" "$T/$C" "$T/$C/links" "$T/usr" "$T/usr/bin"
find "$T/$G" -type d -exec chmod 0755 {} +
make_tar gnu "$T" "$WORK/layer4.tar" \
  srv "$C" "$G" "$G/$(long h 110)" "$G/$(long h 110)/$(long i 110)" "$GLONG" "$G/long-hardlink" \
  "$G/long-symlink" "$C/lower-target" "$G/lower-hardlink" usr/bin/env "$G/env-hardlink" \
  "$C/links" "$C/links/h2" "$C/xattr-replaced" "$C/existing-dir"
tar --delete -f "$WORK/layer4.tar" "$C/lower-target" usr/bin/env
# (Listed first, then searched: `tar | grep -q` under pipefail fails when grep exits before tar
# has written everything and tar gets SIGPIPE.)
layer4_listing=$(tar -tvf "$WORK/layer4.tar")
grep -q "$G/env-hardlink link to usr/bin/env" <<<"$layer4_listing" ||
  die 'layer 4: the hardlink to a lower-layer file is missing'
add_tar conformance "$WORK/layer4.tar" 'layer 4: GNU long names, hardlinks to lower layers'

# --- busybox: a small runnable image -------------------------------------------------------------

BB_GREETING='hello from the conformance busybox image'
# shellcheck disable=SC2016 # expanded by the container's shell
BB_CMD='echo "$GREETING: uid=$(id -u) gid=$(id -g) groups=$(id -G) home=$HOME cwd=$(pwd)"'
umoci new --image "$L:busybox"
umoci unpack --image "$L:busybox" "$B" >/dev/null
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,home/app,proc,sys,dev}
install -m 0755 "$BUSYBOX" "$R/bin/busybox"
"$BUSYBOX" --list-full | while read -r applet; do
  [[ $applet == bin/busybox || -e $R/$applet || -L $R/$applet ]] && continue
  mkdir -p "$(dirname "$R/$applet")"
  if [[ $applet == bin/* ]]; then ln -s busybox "$R/$applet"; else ln -s /bin/busybox "$R/$applet"; fi
done
[[ -L $R/bin/sh && -L $R/usr/bin/id ]] || die 'busybox: applet symlinks missing'
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\nstaff:x:50:app\napp:x:1000:\n' >"$R/etc/group"
chown 1000:1000 "$R/home/app"
chmod 0700 "$R/root"
chmod 1777 "$R/tmp"
BB_VERSION="$("$BUSYBOX" --help 2>&1 | head -1 | cut -d' ' -f2 || true)"
layer busybox "busybox $BB_VERSION and its applets"
# After the layer: umoci unpack resolves the user, so app must be in /etc/passwd first.
umoci config --image "$L:busybox" --os linux \
  --config.env 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --config.env "GREETING=$BB_GREETING" \
  --config.entrypoint /bin/sh --config.entrypoint -c \
  --config.cmd "$BB_CMD" \
  --config.user app --config.workingdir /home/app

umoci gc --layout "$L"
jq -n --arg kind "$KIND" --arg reason "$REASON" --arg suite "$SUITE" --arg mirror "$MIRROR" --arg hash "$HASH" \
  --arg greeting "$BB_GREETING" --arg built "$(date -u +%Y-%m-%dT%H:%M:%SZ)" '{
    "//": "generated by scripts/make-conformance-image.sh",
    kind: $kind, reason: $reason, suite: $suite, mirror: $mirror, scriptHash: $hash, built: $built,
    tags: ["conformance", "busybox"],
    busybox: {
      greeting: $greeting,
      defaultOutput: ($greeting + ": uid=1000 gid=1000 groups=1000 50 home=/home/app cwd=/home/app")
    }
  }' >"$WORK/info.json"
mkdir "$WORK/out"
mv "$L" "$WORK/info.json" "$WORK/out/"
mv "$WORK/out" "$DEST"
log "done: $DEST ($(du -sh "$DEST" | cut -f1))"
echo "$DEST"
