#!/usr/bin/env bash
# Builds, locally and without any image registry, every image docker-compose.yml
# needs:
#
#   1. a Debian base image: a minbase rootfs made with debootstrap from this
#      machine's configured apt mirror, imported with `docker import`
#      (tag $SPARKD_BASE_IMAGE, default sparkd/debian-base:bookworm);
#   2. a ZooKeeper image from Debian's zookeeper package and a JRE, whose
#      entrypoint honours the official image's ZOO_* environment, tagged with
#      the official image's name ($ZK_IMAGE, default zookeeper:3.8), so the
#      same compose file runs unchanged where that tag is pulled;
#   3. the sparkd image from ./Dockerfile, FROM the local base, with bin/sparkd
#      built on the host (`make build`, CGO_ENABLED=0).
#
# Idempotent: the rootfs is made only when the base tag is missing, the ZooKeeper
# image only when its tag is missing (or FORCE_ZK=1), and Docker's build cache
# makes re-running the sparkd build cheap. Set FORCE_BASE=1 to remake the rootfs.
# Needs root (debootstrap) and a running Docker Engine.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SUITE=${DEBIAN_SUITE:-bookworm}
BASE_IMAGE=${SPARKD_BASE_IMAGE:-sparkd/debian-base:${SUITE}}
ZK_IMAGE=${ZK_IMAGE:-zookeeper:3.8}
SPARKD_IMAGE=${SPARKD_IMAGE:-sparkd:latest}
# No buildx on the CI machines: use the classic builder, which needs nothing pulled.
export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0}

log() { printf '\033[1mcompose-images:\033[0m %s\n' "$*"; }
die() { printf 'compose-images: error: %s\n' "$*" >&2; exit 1; }

have_image() { docker image inspect "$1" >/dev/null 2>&1; }
image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }

# drop_if_replaced OLD_ID TAG: remove the image TAG pointed to before a
# rebuild, if the rebuild moved the tag and nothing else uses it.
drop_if_replaced() {
	if [[ -n $1 && $1 != "$(image_id "$2")" ]]; then
		docker rmi "$1" >/dev/null 2>&1 || true
	fi
}

# The debootstrap directory, removed on any exit.
ROOTFS_DIR=""
trap '[[ -z $ROOTFS_DIR ]] || rm -rf "$ROOTFS_DIR" "$ROOTFS_DIR.log"' EXIT

command -v docker >/dev/null 2>&1 || die "docker not found"
docker info >/dev/null 2>&1 || die "cannot talk to the Docker Engine (is it running? are you in the docker group?)"

# apt_source prints "<mirror-uri> <security-uri>" from the machine's apt
# configuration (deb822 .sources files or one-line sources.list), falling back
# to deb.debian.org. DEBIAN_MIRROR overrides the main mirror.
apt_sources() {
	local main="" sec=""
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -f $f ]] || continue
		# deb822 stanzas: pair each URIs: with its Suites:.
		while IFS='|' read -r uri suites; do
			if [[ $suites == *-security* ]]; then
				[[ -n $sec ]] || sec=$uri
			elif [[ -z $main && $suites == *"$SUITE"* ]]; then
				main=$uri
			fi
		done < <(awk '
			/^[[:space:]]*$/ { if (u != "") print u "|" s; u = ""; s = ""; next }
			/^URIs:/ { u = $2 }
			/^Suites:/ { $1 = ""; s = $0 }
			END { if (u != "") print u "|" s }' "$f")
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -f $f ]] || continue
		while read -r typ rest; do
			[[ $typ == deb ]] || continue
			# Drop an [options] block.
			rest=$(sed -E 's/^\[[^]]*\][[:space:]]*//' <<<"$rest")
			read -r uri suite _ <<<"$rest"
			if [[ $suite == *-security* ]]; then
				[[ -n $sec ]] || sec=$uri
			elif [[ -z $main && $suite == "$SUITE"* ]]; then
				main=$uri
			fi
		done <"$f"
	done
	main=${DEBIAN_MIRROR:-${main:-http://deb.debian.org/debian}}
	sec=${DEBIAN_SECURITY_MIRROR:-${sec:-http://deb.debian.org/debian-security}}
	echo "$main $sec"
}

build_base() {
	if have_image "$BASE_IMAGE" && [[ ${FORCE_BASE:-0} != 1 ]]; then
		log "base image $BASE_IMAGE exists; skipping debootstrap (FORCE_BASE=1 remakes it)"
		return
	fi
	[[ $(id -u) -eq 0 ]] || die "debootstrap needs root; run as root, or provide $BASE_IMAGE (e.g. docker tag debian:$SUITE-slim $BASE_IMAGE)"
	if ! command -v debootstrap >/dev/null 2>&1; then
		log "installing debootstrap (apt-get)"
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends debootstrap >/dev/null \
			|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends debootstrap >/dev/null; } \
			|| die "could not install debootstrap"
	fi
	local mirror security
	read -r mirror security < <(apt_sources)
	local dir
	dir=$(mktemp -d /var/tmp/sparkd-rootfs.XXXXXX)
	ROOTFS_DIR=$dir
	log "debootstrap --variant=minbase $SUITE from $mirror (a few minutes)"
	local t0=$SECONDS
	debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$dir" "$mirror" >"$dir.log" 2>&1 \
		|| { tail -n 30 "$dir.log" >&2; rm -f "$dir.log"; die "debootstrap failed"; }
	rm -f "$dir.log"
	# The same sources the host uses, so images built FROM the base can apt-get.
	cat >"$dir/etc/apt/sources.list" <<EOF
deb $mirror $SUITE main
deb $mirror $SUITE-updates main
deb $security $SUITE-security main
EOF
	# Slim it down the way Debian's docker images do.
	cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
	cat >"$dir/etc/apt/apt.conf.d/docker-no-recommends" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF
	cat >"$dir/etc/dpkg/dpkg.cfg.d/docker-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
	rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* \
		"$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/locale/*
	# Java's postinst (update-alternatives) needs this directory to exist.
	mkdir -p "$dir/usr/share/man/man1"
	log "importing rootfs as $BASE_IMAGE"
	local old
	old=$(image_id "$BASE_IMAGE")
	tar -C "$dir" --numeric-owner -c . | docker import \
		-c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		-c 'CMD ["bash"]' \
		-m "debootstrap --variant=minbase $SUITE $mirror" - "$BASE_IMAGE" >/dev/null
	rm -rf "$dir"
	ROOTFS_DIR=""
	drop_if_replaced "$old" "$BASE_IMAGE"
	log "base image $BASE_IMAGE ready ($((SECONDS - t0))s)"
}

# quiet_build ARGS...: docker build, showing its output only if it fails.
quiet_build() {
	local out
	if ! out=$(docker build "$@" 2>&1); then
		printf '%s\n' "$out" | tail -n 40 >&2
		die "docker build $* failed"
	fi
}

build_zookeeper() {
	if have_image "$ZK_IMAGE" && [[ ${FORCE_ZK:-0} != 1 ]]; then
		log "ZooKeeper image $ZK_IMAGE exists; skipping (FORCE_ZK=1 rebuilds it)"
		return
	fi
	log "building $ZK_IMAGE from Debian's zookeeper package (docker/zookeeper)"
	local old
	old=$(image_id "$ZK_IMAGE")
	quiet_build --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$ZK_IMAGE" "$ROOT/docker/zookeeper"
	drop_if_replaced "$old" "$ZK_IMAGE"
	log "ZooKeeper image $ZK_IMAGE ready"
}

build_sparkd() {
	log "building bin/sparkd (make build, CGO_ENABLED=0)"
	make -s build
	file_info=$(file -b bin/sparkd 2>/dev/null || true)
	if [[ -n $file_info && $file_info != *statically* && $file_info != *"static-pie"* ]]; then
		die "bin/sparkd is not statically linked ($file_info); build with CGO_ENABLED=0"
	fi
	log "building $SPARKD_IMAGE from ./Dockerfile (FROM $BASE_IMAGE)"
	local old
	old=$(image_id "$SPARKD_IMAGE")
	quiet_build --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$SPARKD_IMAGE" "$ROOT"
	drop_if_replaced "$old" "$SPARKD_IMAGE"
	log "sparkd image $SPARKD_IMAGE ready"
}

prune() {
	# Dangling images left by re-tagging; only those our builds labelled.
	local ids
	ids=$(docker images -q -f dangling=true -f label=org.sparkd.compose=1)
	if [[ -n $ids ]]; then
		# shellcheck disable=SC2086
		docker rmi $ids >/dev/null 2>&1 || true
	fi
}

build_base
build_zookeeper
build_sparkd
prune
log "done: $BASE_IMAGE, $ZK_IMAGE, $SPARKD_IMAGE"
