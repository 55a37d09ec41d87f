#!/usr/bin/env bash
# Build a small root filesystem directory from the host, for tests and examples.
#
#   bash tools/make-rootfs.sh [--force] [--host-binaries] DEST
#
# With a statically linked busybox on the host (package busybox-static) the
# tree is busybox plus one symlink per applet in DEST/bin. Without it, a set of
# host binaries is copied together with the shared libraries they need and the
# dynamic loader.
#
#   --force          rebuild even if DEST/bin/sh already works
#   --host-binaries  skip busybox and copy host binaries (mostly for testing)
#
# The build happens in a sibling temporary directory that is renamed to DEST
# at the end, so an interrupted run never leaves a half-built DEST behind.
set -euo pipefail

MARKER=.ns-rootfs
HOST_TOOLS=(sh ls cat echo id hostname ps true false sleep mkdir touch env)

usage() {
  echo "usage: $0 [--force] [--host-binaries] DEST" >&2
  exit 2
}

force=0
host_binaries=0
dest=
while (($#)); do
  case $1 in
    --force) force=1 ;;
    --host-binaries) host_binaries=1 ;;
    -h | --help) usage ;;
    --) shift; dest=${1:-}; break ;;
    -*) echo "$0: unknown option $1" >&2; usage ;;
    *)
      [[ -z $dest ]] || usage
      dest=$1
      ;;
  esac
  shift
done
[[ -n $dest ]] || usage

# Absolute, normalised path of DEST; its parent is created if needed.
dest=$(realpath -m -- "$dest")
case $dest in
  / | /. | /bin | /usr | /usr/* | /etc | /lib | /lib64 | /proc | /sys | /dev | /boot | /root | /home)
    echo "$0: refusing to build into $dest" >&2
    exit 1
    ;;
esac
mkdir -p -- "$(dirname -- "$dest")"

# Does DEST/bin/sh run? Inside a chroot when we can (root), so that a copied
# dynamic shell is checked against the libraries in DEST, not the host's.
sh_works() {
  local root=$1
  [[ -x $root/bin/sh ]] || return 1
  if [[ $(id -u) -eq 0 ]] && command -v chroot >/dev/null 2>&1; then
    [[ $(chroot "$root" /bin/sh -c 'echo ok' 2>/dev/null) == ok ]]
  else
    [[ $("$root/bin/sh" -c 'echo ok' 2>/dev/null) == ok ]]
  fi
}

if ((!force)) && sh_works "$dest"; then
  echo "rootfs already built at $dest (use --force to rebuild)"
  exit 0
fi

# May an existing DEST be replaced? Only if empty, built by us, or forced.
if [[ -e $dest ]]; then
  if [[ ! -d $dest ]]; then
    echo "$0: $dest exists and is not a directory" >&2
    exit 1
  fi
  if ((!force)) && [[ ! -e $dest/$MARKER ]] && [[ -n $(ls -A -- "$dest") ]]; then
    echo "$0: $dest is not empty and was not built by this script; use --force to replace it" >&2
    exit 1
  fi
fi

work=$(mktemp -d -- "$(dirname -- "$dest")/.$(basename -- "$dest").tmp.XXXXXX")
cleanup() { [[ -z ${work:-} ]] || rm -rf -- "$work"; }
trap cleanup EXIT

mkdir -p -- "$work"/{bin,proc,sys,dev,tmp,etc,root,usr/bin}

# Is FILE a static executable? ldd prints "not a dynamic executable" (or
# "statically linked") for those; file(1) says "statically linked".
is_static() {
  local f=$1 out
  out=$(ldd -- "$f" 2>&1 || true)
  if grep -qE 'not a dynamic executable|statically linked' <<<"$out"; then
    return 0
  fi
  if command -v file >/dev/null 2>&1 && file -L -- "$f" | grep -q 'statically linked'; then
    return 0
  fi
  return 1
}

find_busybox() {
  local c
  for c in /bin/busybox /usr/bin/busybox /sbin/busybox /usr/sbin/busybox; do
    if [[ -x $c ]] && is_static "$c"; then
      echo "$c"
      return 0
    fi
  done
  return 1
}

# Copy a host file to the same path under the work tree (following symlinks).
copy_same_path() {
  local src=$1
  [[ -e $work$src ]] && return 0
  mkdir -p -- "$work$(dirname -- "$src")"
  cp -L -- "$src" "$work$src"
}

# Copy the shared libraries of BIN and its dynamic loader into the work tree.
copy_libs() {
  local bin=$1 line path
  while IFS= read -r line; do
    path=
    # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)"
    if [[ $line =~ =\>[[:space:]]+(/[^[:space:]]+) ]]; then
      path=${BASH_REMATCH[1]}
    # "/lib64/ld-linux-x86-64.so.2 (0x...)" (the loader)
    elif [[ $line =~ ^[[:space:]]*(/[^[:space:]]+)[[:space:]]+\( ]]; then
      path=${BASH_REMATCH[1]}
    fi
    # "linux-vdso.so.1 (0x...)" has no path and is provided by the kernel.
    if [[ -n $path ]]; then
      if [[ -e $path ]]; then
        copy_same_path "$path"
      else
        echo "$0: warning: $bin needs $path, which is missing on the host" >&2
      fi
    fi
  done < <(ldd -- "$bin" 2>/dev/null || true)
}

mode=
busybox=
if ((!host_binaries)) && busybox=$(find_busybox); then
  mode=busybox
  cp -L -- "$busybox" "$work/bin/busybox"
  chmod 0755 "$work/bin/busybox"
  count=0
  while IFS= read -r applet; do
    [[ -n $applet && $applet != busybox && $applet != */* ]] || continue
    ln -sf busybox "$work/bin/$applet"
    count=$((count + 1))
  done < <("$work/bin/busybox" --list)
  if [[ ! -e $work/bin/sh ]]; then
    ln -s busybox "$work/bin/sh"
  fi
  # Scripts with "#!/usr/bin/env ..." should work too.
  [[ -e $work/bin/env ]] && ln -sf ../../bin/env "$work/usr/bin/env"
  # First word after "BusyBox" in its banner; no pipe into head (SIGPIPE + pipefail).
  banner=$("$work/bin/busybox" 2>&1 || true)
  banner=${banner%%$'\n'*}
  version=$(awk '{print $2}' <<<"$banner")
  summary="busybox ${version:-(unknown version)} from $busybox with $count applets"
else
  mode=host
  copied=()
  missing=()
  for tool in "${HOST_TOOLS[@]}"; do
    path=$(type -P -- "$tool" || true)
    if [[ -z $path ]]; then
      missing+=("$tool")
      continue
    fi
    cp -L -- "$path" "$work/bin/$tool"
    chmod 0755 "$work/bin/$tool"
    copy_libs "$path"
    copied+=("$tool")
  done
  if [[ ! -e $work/bin/sh ]]; then
    echo "$0: no busybox-static and no host sh to copy" >&2
    exit 1
  fi
  [[ -e $work/bin/env ]] && ln -sf ../../bin/env "$work/usr/bin/env"
  summary="host binaries (${copied[*]}) with their shared libraries"
  if ((${#missing[@]})); then
    summary+="; not found on host: ${missing[*]}"
  fi
fi

cat >"$work/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$work/etc/group" <<'EOF'
root:x:0:
tty:x:5:
nogroup:x:65534:
EOF
echo rootfs >"$work/etc/hostname"
echo "$mode" >"$work/$MARKER"

chmod 0755 "$work"
chmod -R a+rX -- "$work"
chmod 1777 "$work/tmp"

if ! sh_works "$work"; then
  echo "$0: the built rootfs cannot run /bin/sh" >&2
  exit 1
fi

if [[ -e $dest ]]; then
  rm -rf -- "$dest"
fi
mv -T -- "$work" "$dest"
work=

echo "built rootfs at $dest: $summary"
