#!/usr/bin/env bash
# Build Informant's container image from this repository alone: no base image to pull, no Docker daemon.
#
#   deploy/build-image.sh                      # release build, then target/image/informant.tar
#   deploy/build-image.sh --binary FILE        # assemble around an informant binary built already
#   deploy/build-image.sh --update-packages    # take Debian's current versions into deploy/image/packages.lock
#
# The image is assembled the way distroless images are: the host binary and the example plugins on a
# minimal runtime taken from Debian packages (libc6, libgcc-s1 and the CA certificates; no shell, no
# package manager), run as uid 65532. Its layout and entrypoint are the Dockerfile's. The result is an
# OCI image archive (oci-layout, one gzip layer) named IMAGE (default ghcr.io/informant-dev/informant:VERSION).
#
# Reproducible: the same binary, plugins and packages give the same image digest. The package versions and
# their SHA-256 are pinned in deploy/image/packages.lock; every file has mtime SOURCE_DATE_EPOCH (default 0),
# owner 0:0, and the archives list names in sorted order.
#
# Options:
#   --binary FILE    use this informant binary instead of `cargo build --release -p informant`
#   --examples DIR   the example plugins (default: where the host's build puts them)
#   --image NAME:TAG the name the archive carries (default ghcr.io/informant-dev/informant:VERSION)
#   --out FILE       the archive (default target/image/informant.tar)
#   --update-packages  resolve the packages' current versions with apt and rewrite the lock file
#
# Needs: bash, tar, gzip, sha256sum, dpkg-deb and apt-get (to download the pinned packages; they are
# cached in target/image/debs). Push the archive with any OCI tool, for example
#   skopeo copy oci-archive:target/image/informant.tar docker://REGISTRY/informant:0.1.0
# or put it on a node with `ctr -n k8s.io images import target/image/informant.tar`.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
lock=deploy/image/packages.lock
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
binary="" examples="" image="" out="target/image/informant.tar" update=0
while (($#)); do
  case $1 in
    --binary) binary=${2:?--binary needs a file}; shift 2 ;;
    --examples) examples=${2:?--examples needs a directory}; shift 2 ;;
    --image) image=${2:?--image needs NAME:TAG}; shift 2 ;;
    --out) out=${2:?--out needs a file}; shift 2 ;;
    --update-packages) update=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-image.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
image=${image:-ghcr.io/informant-dev/informant:$version}
epoch=${SOURCE_DATE_EPOCH:-0}
work=$root/target/image
debs=$work/debs
mkdir -p "$work" "$debs"

say() { echo "build-image: $*" >&2; }
need() { command -v "$1" >/dev/null || { say "needs $1 ($2)"; exit 1; }; }
need tar "GNU tar"; need gzip gzip; need sha256sum coreutils; need dpkg-deb "Debian's dpkg"

# ---------- the pinned Debian packages ----------
if ((update)); then
  need apt-cache "Debian's apt"
  tmp=$(mktemp)
  {
    echo "# The Debian packages the image's runtime is made of: name version sha256 (deploy/build-image.sh)."
    echo "# Rewritten by deploy/build-image.sh --update-packages; commit the change."
    for pkg in libc6 libgcc-s1 ca-certificates; do
      v=$(apt-cache policy "$pkg" | sed -n 's/^  Candidate: //p')
      [[ -n $v && $v != "(none)" ]] || { say "apt knows no candidate for $pkg (apt-get update?)"; exit 1; }
      (cd "$debs" && apt-get download -q "$pkg=$v" >/dev/null 2>&1) || { say "apt-get download $pkg=$v failed"; exit 1; }
      f=$(ls "$debs/${pkg}_"*"_"*.deb | grep -F "_${v//:/%3a}_" | head -1)
      echo "$pkg $v $(sha256sum "$f" | cut -d' ' -f1)"
    done
  } > "$tmp"
  mv "$tmp" "$lock"
  say "wrote $lock"
fi
[[ -f $lock ]] || { say "no $lock: run with --update-packages once"; exit 1; }
packages=()
while read -r pkg v sum; do
  [[ -z $pkg || $pkg == \#* ]] && continue
  file=$(ls "$debs/${pkg}_"*.deb 2>/dev/null | grep -F "_${v//:/%3a}_" | head -1 || true)
  if [[ -z $file ]] || [[ $(sha256sum "$file" | cut -d' ' -f1) != "$sum" ]]; then
    need apt-get "Debian's apt, to download $pkg $v"
    say "downloading $pkg $v"
    if ! (cd "$debs" && apt-get download -q "$pkg=$v" >/dev/null 2>"$work/apt.err"); then
      say "apt-get download $pkg=$v failed: $(tail -1 "$work/apt.err")"
      say "apt's package lists may be older than the lock (apt-get update, then run again), or the archive may no longer have this version (run with --update-packages, check the image, commit $lock)"
      exit 1
    fi
    file=$(ls "$debs/${pkg}_"*.deb | grep -F "_${v//:/%3a}_" | head -1)
  fi
  got=$(sha256sum "$file" | cut -d' ' -f1)
  [[ $got == "$sum" ]] || { say "$file: sha256 $got, but $lock pins $sum"; exit 1; }
  packages+=("$file")
done < "$lock"

# ---------- the binary and the example plugins ----------
if [[ -z $binary ]]; then
  need cargo "rustup"
  say "building the release binary (cargo build --release --locked -p informant)"
  cargo build --release --locked -p informant >&2
  binary=target/release/informant
fi
[[ -x $binary ]] || { say "$binary: not an executable"; exit 1; }
examples=${examples:-${CARGO_TARGET_DIR:-target}/wasm-plugins/wasm32-wasip2/release}
for p in label_enforcer replicator restarter tenant_namespaces; do
  [[ -f $examples/$p.wasm ]] || { say "$examples/$p.wasm is missing: build the host with its examples feature (the default)"; exit 1; }
done

# ---------- the root filesystem ----------
rootfs=$work/rootfs
rm -rf "$rootfs"
mkdir -p "$rootfs"
for deb in "${packages[@]}"; do
  dpkg-deb -x "$deb" "$rootfs"
  # What a scanner reads to know the image's packages (as distroless records them).
  name=$(dpkg-deb -f "$deb" Package)
  mkdir -p "$rootfs/var/lib/dpkg/status.d"
  dpkg-deb -f "$deb" > "$rootfs/var/lib/dpkg/status.d/$name"
done
# Keep the licences; drop documentation, manuals, translations, maintainer scripts' helpers.
find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
rm -rf "$rootfs/usr/share/man" "$rootfs/usr/share/lintian" "$rootfs/usr/share/locale" \
  "$rootfs/usr/sbin/update-ca-certificates" "$rootfs/etc/ca-certificates" "$rootfs/usr/share/ca-certificates"
rmdir "$rootfs/usr/sbin" 2>/dev/null || true
# The CA bundle that ca-certificates' postinst would write: every certificate it ships, in name order.
certs=$work/certs
rm -rf "$certs"; mkdir -p "$certs" "$rootfs/etc/ssl/certs"
dpkg-deb -x "$(printf '%s\n' "${packages[@]}" | grep /ca-certificates_)" "$certs"
find "$certs/usr/share/ca-certificates" -name '*.crt' | LC_ALL=C sort | xargs cat > "$rootfs/etc/ssl/certs/ca-certificates.crt"
rm -rf "$certs"
grep -q 'BEGIN CERTIFICATE' "$rootfs/etc/ssl/certs/ca-certificates.crt" || { say "no CA certificates in the bundle"; exit 1; }
# Users, as distroless has them: root, nonroot (65532) and nobody; no login shells.
mkdir -p "$rootfs/etc" "$rootfs/home/nonroot" "$rootfs/tmp" "$rootfs/var/cache/informant" "$rootfs/plugins"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
  'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' > "$rootfs/etc/passwd"
printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' > "$rootfs/etc/group"
printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' > "$rootfs/etc/nsswitch.conf"
printf '%s\n' 'PRETTY_NAME="Informant runtime (Debian 12 packages)"' 'ID=debian' 'VERSION_ID="12"' \
  'HOME_URL="https://github.com/informant-dev/informant"' > "$rootfs/etc/os-release"
chmod 1777 "$rootfs/tmp"
install -D -m 0755 "$binary" "$rootfs/usr/local/bin/informant"
mkdir -p "$rootfs/usr/share/informant/examples"
for p in label_enforcer replicator restarter tenant_namespaces; do
  install -m 0644 "$examples/$p.wasm" "$rootfs/usr/share/informant/examples/${p//_/-}.wasm"
done
# Directories nonroot owns in distroless; the layer below records them as 65532.
chmod 0700 "$rootfs/home/nonroot"
chmod 0755 "$rootfs/var/cache/informant" "$rootfs/plugins"

# ---------- the OCI image ----------
oci=$work/oci
rm -rf "$oci"; mkdir -p "$oci/blobs/sha256"
# Deterministic tar: sorted names, one mtime, numeric owners 0:0, except what nonroot owns.
tarflags=(--sort=name --mtime="@$epoch" --numeric-owner --format=posix
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime)
tar "${tarflags[@]}" --owner=0 --group=0 -C "$rootfs" \
  --exclude=./home/nonroot --exclude=./var/cache/informant -cf "$work/layer.tar" .
tar "${tarflags[@]}" --owner=65532 --group=65532 -C "$rootfs" -rf "$work/layer.tar" ./home/nonroot ./var/cache/informant
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -c "$work/layer.tar" > "$work/layer.tar.gz"
rm -f "$work/layer.tar"
layer=$(sha256sum "$work/layer.tar.gz" | cut -d' ' -f1)
layer_size=$(stat -c %s "$work/layer.tar.gz")
mv "$work/layer.tar.gz" "$oci/blobs/sha256/$layer"

created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
# The commit it was built from (the revision label), unless IMAGE_REVISION names it: an input like any
# other, so a build from the same binary at another commit has another digest.
if [ -n "${IMAGE_REVISION:-}" ]; then
  revision=$IMAGE_REVISION
else
  revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
  git diff --quiet HEAD 2>/dev/null || revision="$revision-dirty"
fi
labels="\"org.opencontainers.image.title\":\"informant\",\"org.opencontainers.image.version\":\"$version\",\"org.opencontainers.image.revision\":\"$revision\",\"org.opencontainers.image.source\":\"https://github.com/informant-dev/informant\",\"org.opencontainers.image.licenses\":\"Apache-2.0\""
printf '{"architecture":"amd64","os":"linux","created":"%s","config":{"User":"65532:65532","Entrypoint":["/usr/local/bin/informant"],"Cmd":["run","--plugins","/plugins","--log-format","json"],"Env":["PATH=/usr/local/bin:/usr/bin:/bin","SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"],"WorkingDir":"/","ExposedPorts":{"8080/tcp":{}},"Labels":{%s}},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"%s","created_by":"deploy/build-image.sh"}]}' \
  "$created" "$labels" "$diff_id" "$created" > "$work/config.json"
config=$(sha256sum "$work/config.json" | cut -d' ' -f1)
config_size=$(stat -c %s "$work/config.json")
mv "$work/config.json" "$oci/blobs/sha256/$config"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}],"annotations":{"org.opencontainers.image.created":"%s"}}' \
  "$config" "$config_size" "$layer" "$layer_size" "$created" > "$work/manifest.json"
manifest=$(sha256sum "$work/manifest.json" | cut -d' ' -f1)
manifest_size=$(stat -c %s "$work/manifest.json")
mv "$work/manifest.json" "$oci/blobs/sha256/$manifest"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
  "$manifest" "$manifest_size" "$image" "${image##*:}" > "$oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$oci/oci-layout"
mkdir -p "$(dirname "$out")"
tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner --format=posix \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  -C "$oci" -cf "$out.tmp" oci-layout index.json blobs
mv "$out.tmp" "$out"
rm -rf "$oci" "$rootfs"

say "$(printf '%s\n' "${packages[@]}" | xargs -n1 basename | tr '\n' ' ')"
say "layer $(numfmt --to=iec "$layer_size") compressed"
echo "$out: $image sha256:$manifest"
