#!/usr/bin/env bash
# A pure cgroup v2 machine for the integration tests, on any host: Debian's
# own kernel under qemu (TCG), booted with cgroup_no_v1=all. Needs root and
# Debian's qemu-system-x86, mmdebstrap and busybox-static (scripts/test.sh
# installs them).
#
#   scripts/cgroup-v2-vm.sh build
#       Makes the VM kit in $PG_VM_CACHE (default /var/cache/playground-vm)
#       unless it is current: the kernel, a small initramfs, and a root disk
#       (Debian with the engine's tools and this host's node). Rebuilt when
#       this script, the files in scripts/vm/, the kernel package or node change.
#
#   scripts/cgroup-v2-vm.sh run [--timeout SECONDS] -- COMMAND [ARG...]
#       Builds the kit if needed, then boots it with a fresh copy of the
#       checkout (its tracked files, node_modules, server/generated; not .git),
#       runs COMMAND in it as root, prints the VM's console, and exits with
#       COMMAND's exit status. The copy lives on throwaway disks (deleted
#       afterwards), so COMMAND may write anywhere. Default timeout 1200 s.
#
# Inside: no network device (tests use loopback), 2 vCPUs, 2 GiB of RAM, /tmp
# on the scratch disk. Several runs may boot from the kit at once. Nothing
# stays on the host: no mount, no loop device, no process; the kit is built
# without mounting anything on the host (mmdebstrap's unshare mode keeps its
# mounts in a namespace of its own).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${PG_VM_CACHE:-/var/cache/playground-vm}
kit=$cache/kit

# What the engine and the tests run inside (see scripts/setup.sh and
# scripts/test.sh), plus kmod (modprobe) and gcc with libc6-dev for the
# container shim, which the engine compiles on first use.
packages=(
  util-linux iproute2 iptables nftables e2fsprogs mount procps attr perl-base
  docker-registry skopeo busybox-static openssl ca-certificates gcc libc6-dev kmod
)
suite=bookworm
mirrors=(
  "deb http://deb.debian.org/debian $suite main"
  "deb http://deb.debian.org/debian $suite-updates main"
  "deb http://deb.debian.org/debian-security $suite-security main"
)
# The kernel modules the root disk carries: file systems, networking and
# netfilter, and the drivers of the VM's devices. Not sound, GPUs, wireless...
module_dirs=(kernel/fs kernel/net kernel/lib kernel/crypto kernel/arch kernel/block kernel/mm
  kernel/drivers/block kernel/drivers/virtio kernel/drivers/char kernel/drivers/net/veth.ko kernel/drivers/net/dummy.ko)
# What the initramfs loads to mount the root disk (ext4 under an overlay).
initramfs_modules=(virtio_pci virtio_blk crc32c_generic ext4 overlay)

say() { echo "pg-vm: $*" >&2; }
die() {
  say "$*"
  exit 1
}

need_tools() {
  local tool missing=()
  for tool in qemu-system-x86_64 mmdebstrap busybox mkfs.ext4 flock timeout; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [ ${#missing[@]} -eq 0 ] ||
    die "missing ${missing[*]}: apt-get install qemu-system-x86 mmdebstrap busybox-static (scripts/test.sh does)"
  [ "$(id -u)" = 0 ] || die "run this as root"
}

# The kernel package linux-image-amd64 points at today, e.g. linux-image-6.1.0-57-amd64.
kernel_package() {
  local name
  name=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
  if [ -z "$name" ]; then
    apt-get update -qq
    name=$(apt-cache depends linux-image-amd64 | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
  fi
  [ -n "$name" ] || die "apt-cache does not know linux-image-amd64"
  echo "$name"
}

# Everything the kit is made from: when this changes, the kit is rebuilt.
kit_inputs() {
  cat "$repo/scripts/cgroup-v2-vm.sh" "$repo"/scripts/vm/*
  echo "$1"
  node --version
  npm --version
}

# Prints the .ko files (relative to lib/modules/VERSION) that `modprobe -a
# MODULE...` would load, in load order, from the kernel's modules.dep.
load_order() {
  local dep_file=$1
  shift
  awk -v wanted="$*" '
    { path = $1; sub(/:$/, "", path); deps[path] = ""; for (i = NF; i >= 2; i--) deps[path] = deps[path] " " $i
      name = path; sub(/.*\//, "", name); sub(/\.ko$/, "", name); gsub(/-/, "_", name); byname[name] = path }
    function load(p,   n, list, i) {
      if (p in done) return
      n = split(deps[p], list, " ")
      for (i = 1; i <= n; i++) load(list[i])
      done[p] = 1; print p
    }
    END { n = split(wanted, w, " ")
          for (i = 1; i <= n; i++) { if (!(w[i] in byname)) { print "no module " w[i] > "/dev/stderr"; exit 1 }; load(byname[w[i]]) } }
  ' "$dep_file"
}

# Sets kpkg and stamp (the hash of the kit's inputs); true when the kit in the
# cache was built from the same.
kit_is_current() {
  kpkg=$(kernel_package)
  stamp=$(kit_inputs "$kpkg" | sha256sum | cut -d' ' -f1)
  [ "$(cat "$kit/stamp" 2>/dev/null)" = "$stamp" ]
}

# Builds the kit unless it is current. The caller holds the build lock.
build_kit() {
  if kit_is_current; then
    say "kit is current ($kit)"
    return
  fi
  say "building the kit in $kit ($kpkg, Debian $suite)"
  local started=$SECONDS work
  work=$(mktemp -d "$cache/build.XXXXXX")
  # Removed however the build ends; nothing in it is mounted.
  trap "rm -rf '$work'" EXIT

  # The kernel: extracted from its package, never installed on this host
  # (that would run update-initramfs and touch /boot and the boot loader).
  (cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$kpkg" >/dev/null)
  dpkg-deb -x "$work"/"$kpkg"_*.deb "$work/kernel"
  local kver
  kver=$(basename "$work"/kernel/lib/modules/*)

  local root=$work/root
  mkdir "$root"
  # Documentation and translations are of no use to the tests: leaving them
  # out makes the disk smaller and quicker to build.
  mmdebstrap --quiet --mode=unshare --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    "$suite" "$root" "${mirrors[@]}" </dev/null

  mkdir -p "$root/lib/modules/$kver"
  (cd "$work/kernel/lib/modules/$kver" && cp -a --parents "${module_dirs[@]}" modules.order modules.builtin modules.builtin.modinfo "$root/lib/modules/$kver/")
  chroot "$root" depmod -a "$kver"

  # Debian 12's nodejs is 18; the project needs this host's (20 or later).
  install -m 0755 "$(readlink -f "$(command -v node)")" "$root/usr/local/bin/node"
  mkdir -p "$root/usr/local/lib/node_modules"
  cp -a "$(npm root -g)/npm" "$root/usr/local/lib/node_modules/"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"

  install -m 0755 "$repo/scripts/vm/guest-init" "$root/sbin/pg-vm-init"
  echo pg-vm >"$root/etc/hostname"
  # mmdebstrap copied this host's resolver list; the VM has no network, and an
  # address on the benchmarking range (RFC 2544) keeps the engine's DNS set-up realistic.
  echo "nameserver 198.18.0.53" >"$root/etc/resolv.conf"
  ln -sf ../proc/self/mounts "$root/etc/mtab"

  # Read-only at run time (under a RAM overlay), so no journal.
  local size_mb
  size_mb=$(($(du -sm "$root" | cut -f1) * 6 / 5 + 64))
  mkfs.ext4 -q -F -L pg-vm-root -O ^has_journal -d "$root" "$work/root.img" "${size_mb}M" >/dev/null

  local initramfs=$work/initramfs module
  mkdir -p "$initramfs"/{bin,dev,proc,sys,lib/modules}
  cp /bin/busybox "$initramfs/bin/busybox"
  install -m 0755 "$repo/scripts/vm/initramfs-init" "$initramfs/init"
  load_order "$root/lib/modules/$kver/modules.dep" "${initramfs_modules[@]}" >"$initramfs/modules"
  for module in $(cat "$initramfs/modules"); do
    mkdir -p "$initramfs/lib/modules/$(dirname "$module")"
    cp "$root/lib/modules/$kver/$module" "$initramfs/lib/modules/$module"
  done
  (cd "$initramfs" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 >"$work/initrd.img")

  cp "$work/kernel/boot/vmlinuz-$kver" "$work/vmlinuz"
  echo "$stamp" >"$work/stamp"
  mkdir "$work/kit"
  mv "$work"/{vmlinuz,initrd.img,root.img,stamp} "$work/kit/"
  # Swapped in when no VM is booted from the old kit (they hold the kit lock).
  flock 9
  rm -rf "$kit"
  mv "$work/kit" "$kit"
  flock -u 9
  rm -rf "$work"
  trap - EXIT
  say "kit built in $((SECONDS - started)) s"
}

# Writes, in the directory $1, the two throwaway disks of a run:
# scratch.img (checkout/ with the tracked files and server/generated,
# command, and tmp/ with room for the tests) and node-modules.img.
make_run_disks() {
  local dir=$1 command_line=$2 staging=$1/scratch
  mkdir -p "$staging/checkout/node_modules" "$staging/tmp"
  chmod 1777 "$staging/tmp"
  # The tracked files as they are in the work tree (edits included, .git not).
  (cd "$repo" && git ls-files -z | tar --null --files-from=- --ignore-failed-read -cf -) | tar -xf - -C "$staging/checkout"
  [ -d "$repo/server/generated" ] && cp -a "$repo/server/generated" "$staging/checkout/server/"
  echo "$command_line" >"$staging/command"

  # Room for what the tests write in /tmp: registries, image stores, the
  # containers' writable layers. A sparse file: only what is written takes space.
  local size_mb
  size_mb=$(($(du -sm "$staging" | cut -f1) + 4096))
  mkfs.ext4 -q -F -L pg-vm-scratch -O ^has_journal -d "$staging" "$dir/scratch.img" "${size_mb}M" >/dev/null
  rm -rf "$staging"

  local node_modules
  node_modules=$(readlink -f "$repo/node_modules")
  [ -d "$node_modules" ] || die "no node_modules in $repo: run npm ci (scripts/setup.sh does)"
  size_mb=$(($(du -sm "$node_modules" | cut -f1) * 5 / 4 + 256))
  mkfs.ext4 -q -F -L pg-vm-node-mods -O ^has_journal -d "$node_modules" "$dir/node-modules.img" "${size_mb}M" >/dev/null
}

run_vm() {
  local timeout=1200
  while [ $# -gt 0 ]; do
    case $1 in
      --timeout) timeout=$2; shift 2 ;;
      --) shift; break ;;
      *) break ;;
    esac
  done
  [ $# -gt 0 ] || die "usage: $0 run [--timeout SECONDS] -- COMMAND [ARG...]"

  local started=$SECONDS run_dir
  run_dir=$(mktemp -d "${TMPDIR:-/tmp}/pg-vm-run.XXXXXX")
  trap "rm -rf '$run_dir'" EXIT
  make_run_disks "$run_dir" "exec $(printf '%q ' "$@")"
  say "disks made in $((SECONDS - started)) s; booting (timeout $timeout s)"

  local console=$run_dir/console.log
  : >"$console"
  # TCG, not KVM: a KVM boot stalls on some hosts, and TCG runs anywhere.
  # Single-threaded TCG: with one host thread per vCPU (thread=multi),
  # QEMU 7.2 let node crash now and then (a segfault, or corrupt memory in
  # Prisma's WebAssembly) in about one run in fifteen; with one thread for
  # both vCPUs, never in our runs.
  # A CPU without AVX: V8 does without it, and QEMU's TCG emulates it only
  # since 7.2. mitigations=off: emulated, the guest's Meltdown and Spectre
  # mitigations only cost time (page-table isolation made system calls 8x
  # slower), and the VM runs nothing but the tests.
  # `timeout` kills qemu, the child it started, when the time is up.
  timeout --kill-after=10 "$timeout" qemu-system-x86_64 \
    -accel tcg,thread=single -cpu Westmere -smp 2 -m 2048 \
    -nodefaults -no-user-config -display none -serial "file:$console" -nic none -no-reboot \
    -kernel "$kit/vmlinuz" -initrd "$kit/initrd.img" \
    -append "console=ttyS0 panic=-1 quiet cgroup_no_v1=all mitigations=off" \
    -drive "file=$kit/root.img,format=raw,if=virtio,readonly=on" \
    -drive "file=$run_dir/scratch.img,format=raw,if=virtio" \
    -drive "file=$run_dir/node-modules.img,format=raw,if=virtio" \
    </dev/null &
  local vm=$!
  # Stopped early (Ctrl-C, a test runner giving up), the script stops the VM
  # too: `timeout` passes the signal on to qemu.
  trap "kill -TERM $vm 2>/dev/null || true; rm -rf '$run_dir'" EXIT
  trap "exit 130" INT TERM
  # The console as it comes, until qemu is gone.
  tail -n +1 -f --pid="$vm" "$console" | sed -u 's/\r$//' &
  local status=0
  wait "$vm" || status=$?
  wait

  local reported
  reported=$(grep -o 'PG-VM-EXIT [0-9]*' "$console" | tail -n 1 | cut -d' ' -f2)
  if [ "$status" = 124 ] || [ "$status" = 137 ]; then
    die "timed out after $timeout s: qemu was killed"
  elif [ "$status" != 0 ]; then
    die "qemu failed (exit status $status)"
  elif [ -z "$reported" ]; then
    die "the VM stopped without reporting an exit status (see its console above)"
  fi
  say "COMMAND exited with $reported; $((SECONDS - started)) s in all"
  exit "$reported"
}

need_tools
mkdir -p "$cache"
# Two locks: one builder at a time holds the build lock; each VM holds the kit
# lock shared while it is up, so VMs run side by side and the kit is never
# swapped under one.
exec 8>"$cache/build.lock" 9>"$cache/kit.lock"
case ${1:-} in
  build)
    flock 8
    build_kit
    ;;
  run)
    shift
    flock 8
    build_kit
    flock -s 9
    flock -u 8
    run_vm "$@"
    ;;
  *)
    die "usage: $0 build | run [--timeout SECONDS] -- COMMAND [ARG...]"
    ;;
esac
