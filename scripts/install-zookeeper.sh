#!/usr/bin/env bash
# Installs an Apache ZooKeeper server (Java) for the erpc-zookeeper tests, once.
#
#   scripts/install-zookeeper.sh
#
# Prints ONLY a lib directory on stdout (start the server with
# `java -cp "<lib>/*" org.apache.zookeeper.server.ZooKeeperServerMain <port> <datadir>`
# or `... org.apache.zookeeper.server.quorum.QuorumPeerMain <zoo.cfg>`); logs go to stderr.
# Cache: ${ERPC_CACHE_DIR:-$HOME/.cache/erpc}/zookeeper-<version>/lib
#
# 1. Debian's `zookeeper` package (3.8), when apt-get can install it (root): its
#    /usr/share/java/zookeeper.jar names every dependency in its manifest Class-Path, so
#    the lib directory holds a link to it. The system service is not started.
# 2. Otherwise org.apache.zookeeper:zookeeper from Maven Central with its runtime
#    dependencies (needs mvn), version ZOOKEEPER_VERSION (default 3.9.5), plus the two
#    jars its pom marks `provided` and the server needs (metrics-core, snappy-java), as
#    the official binary tarball ships them.
# Exits non-zero, saying why, when neither works. Needs java (11+) to run the server.
set -euo pipefail

log() { echo "install-zookeeper: $*" >&2; }

cache="${ERPC_CACHE_DIR:-$HOME/.cache/erpc}"
mkdir -p "$cache"
if command -v flock >/dev/null; then
  exec 9>"$cache/zookeeper.lock"
  flock -w 900 9 || { log "timed out waiting for $cache/zookeeper.lock"; exit 1; }
fi

command -v java >/dev/null || log "warning: no 'java' on PATH; the server cannot run without a JRE"

# Prints the lib dir of a complete cache entry, if one exists for $1.
cached() {
  local root="$cache/zookeeper-$1"
  if [ -f "$root/.complete" ] && [ -d "$root/lib" ]; then
    echo "$root/lib"
    return 0
  fi
  return 1
}

debian_jar=/usr/share/java/zookeeper.jar
install_debian() {
  if [ ! -f "$debian_jar" ]; then
    command -v apt-get >/dev/null || { log "no apt-get"; return 1; }
    [ "$(id -u)" = 0 ] || { log "not root: cannot apt-get install zookeeper"; return 1; }
    log "installing the Debian zookeeper package (without starting its service)"
    # A policy-rc.d answering 101 keeps the package's scripts from starting the service
    # (only when none exists; removed afterwards).
    local policy=/usr/sbin/policy-rc.d own_policy=""
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
    fi
    local ok=1
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends zookeeper >&2; then
      log "apt-get install zookeeper failed; trying apt-get update first"
      apt-get update >&2 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends zookeeper >&2 || ok=""
    fi
    [ -n "$own_policy" ] && rm -f "$policy"
    [ -n "$ok" ] || { log "apt-get install zookeeper failed"; return 1; }
  fi
  [ -f "$debian_jar" ] || { log "$debian_jar missing after install"; return 1; }
  local version
  version=$(dpkg-query -W -f='${Version}' libzookeeper-java 2>/dev/null || echo unknown)
  version="deb-${version%%-*}"
  if cached "$version"; then return 0; fi
  local root="$cache/zookeeper-$version"
  rm -rf "$root"
  mkdir -p "$root/lib"
  ln -s "$debian_jar" "$root/lib/zookeeper.jar"
  echo "debian libzookeeper-java $version" >"$root/source"
  touch "$root/.complete"
  echo "$root/lib"
}

install_maven() {
  local version="${ZOOKEEPER_VERSION:-3.9.5}"
  if cached "$version"; then return 0; fi
  command -v mvn >/dev/null || { log "no 'mvn' on PATH for the Maven Central fallback"; return 1; }
  local root="$cache/zookeeper-$version"
  log "assembling org.apache.zookeeper:zookeeper:$version from Maven Central into $root"
  rm -rf "$root.tmp"
  mkdir -p "$root.tmp/build"
  cat >"$root.tmp/build/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>erpc.local</groupId><artifactId>zookeeper-server-assembly</artifactId><version>1</version>
<packaging>pom</packaging><dependencies>
<dependency><groupId>org.apache.zookeeper</groupId><artifactId>zookeeper</artifactId><version>$version</version></dependency>
<dependency><groupId>io.dropwizard.metrics</groupId><artifactId>metrics-core</artifactId><version>4.2.40</version></dependency>
<dependency><groupId>org.xerial.snappy</groupId><artifactId>snappy-java</artifactId><version>1.1.10.12</version></dependency>
</dependencies></project>
EOF
  if ! (cd "$root.tmp/build" && nice -n 10 mvn -q -B -Dstyle.color=never \
          org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
          -DincludeScope=runtime -DoutputDirectory="$root.tmp/lib" >&2); then
    log "mvn could not resolve org.apache.zookeeper:zookeeper:$version"
    rm -rf "$root.tmp"
    return 1
  fi
  rm -rf "$root.tmp/build"
  echo "maven org.apache.zookeeper:zookeeper:$version" >"$root.tmp/source"
  touch "$root.tmp/.complete"
  rm -rf "$root"
  mv "$root.tmp" "$root"
  echo "$root/lib"
}

if [ "${ZOOKEEPER_SOURCE:-}" != maven ] && install_debian; then
  exit 0
fi
if install_maven; then
  exit 0
fi
log "ZooKeeper could not be installed: neither the Debian package (apt-get, as root) nor Maven Central (mvn) worked"
exit 1
