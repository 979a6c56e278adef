#!/usr/bin/env bash
# Assembles a Nacos server (Java) from Maven Central into a cache directory, once.
#
#   scripts/install-nacos.sh VERSION_LINE        # VERSION_LINE: 2 or 3
#
# Prints ONLY the lib directory (all jars) on stdout; logs go to stderr.
# Cache: ${ERPC_CACHE_DIR:-$HOME/.cache/erpc}/nacos-<version>/lib
# Next to lib/ it writes `main-class` (read by run-nacos.sh) and `coords`.
# Needs: bash, java 17, mvn (reaching Maven Central). Idempotent: when the cache is
# complete (marker file .complete) it does nothing but print the path.
#
# Why not com.alibaba.nacos:* ? Alibaba publishes only the CLIENT modules of Nacos to
# Maven Central (nacos-client, nacos-api, nacos-common, plugin APIs). nacos-console,
# nacos-core, nacos-naming, nacos-config, nacos-server, nacos-bootstrap are not there for
# any 1.x/2.x/3.x version (the maintainers: "server part module will not release to mvn
# repository", alibaba/nacos issues #9944, #11814, #13936). So this script uses
# unmodified-looking rebuilds of the official source that third parties published to
# Central under their own groupId (same com.alibaba.nacos.* classes inside):
#   2 -> org.jeecgframework.nacos:nacos-console:2.3.2   (JeecgBoot's republish of 2.3.2)
#   3 -> io.github.pig-mesh.nacos:nacos-server + nacos-console:3.1.0-bugfix
#        (PIG's republish of 3.1.0), started by scripts/nacos-launcher/ErpcNacos3Launcher
#        (compiled here with javac: the official 3.x `bootstrap` launcher module is not
#        published by Alibaba or pig-mesh on Central, and 3.x's old com.alibaba.nacos.Nacos refuses to
#        start: "Nacos don't start up").
# Override with NACOS_MAVEN_COORDS="group:artifact[,artifact...]:version" and
# NACOS_MAIN_CLASS if you know better coordinates. See scripts/NACOS-SERVERS.md.
set -euo pipefail

log() { echo "install-nacos: $*" >&2; }

line="${1:-}"
case "$line" in
  2)
    group="org.jeecgframework.nacos"; artifacts="nacos-console"; version="2.3.2"
    main="com.alibaba.nacos.Nacos"
    ;;
  3)
    group="io.github.pig-mesh.nacos"; artifacts="nacos-server nacos-console"
    version="3.1.0-bugfix"
    # Not com.alibaba.nacos.Nacos: in 3.x that deprecated class dies with "Nacos don't
    # start up". The official launcher (bootstrap module) is not on Central, so a small
    # one (scripts/nacos-launcher/) is compiled with javac against the jars.
    main="erpc.nacos.ErpcNacos3Launcher"
    launcher_src="$(cd "$(dirname "$0")" && pwd)/nacos-launcher/ErpcNacos3Launcher.java"
    ;;
  *)
    echo "usage: $0 2|3   (Nacos version line)" >&2
    exit 2
    ;;
esac
if [ -n "${NACOS_MAVEN_COORDS:-}" ]; then
  # group:artifact[,artifact...]:version
  IFS=: read -r group arts version <<<"$NACOS_MAVEN_COORDS"
  artifacts="${arts//,/ }"
  main="${NACOS_MAIN_CLASS:-$main}"
fi

cache="${ERPC_CACHE_DIR:-$HOME/.cache/erpc}"
root="$cache/nacos-$version"
lib="$root/lib"

# Serialize concurrent installs of the same version (tests may start in parallel).
mkdir -p "$cache"
if command -v flock >/dev/null; then
  exec 9>"$cache/nacos-$version.lock"
  flock -w 900 9 || { log "timed out waiting for $cache/nacos-$version.lock"; exit 1; }
fi

if [ -f "$root/.complete" ] && [ -d "$lib" ] && [ -f "$root/classpath.txt" ]; then
  # 3.x: recompile the start-up class only when its source changed.
  if [ -n "${launcher_src:-}" ] && ! cmp -s "$launcher_src" "$root/classes/launcher.java"; then
    log "recompiling $launcher_src"
    javac -nowarn -d "$root/classes" -cp "$lib/*" "$launcher_src" >&2 || {
      log "Nacos 3.x: compiling $launcher_src failed"; exit 3; }
    cp "$launcher_src" "$root/classes/launcher.java"
  fi
  echo "$lib"
  exit 0
fi

for tool in java mvn; do
  command -v "$tool" >/dev/null || { log "missing '$tool' on PATH"; exit 4; }
done

# Pinned: 3.x keeps Maven's resolution order in build-classpath (2.8, Maven 3.8's
# default, does not).
dep_plugin="org.apache.maven.plugins:maven-dependency-plugin:3.6.1"

log "assembling Nacos $version ($group: $artifacts) into $root"
rm -rf "$root.tmp"
mkdir -p "$root.tmp/build"
{
  echo '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
  echo '<groupId>erpc.local</groupId><artifactId>nacos-server-assembly</artifactId><version>1</version>'
  echo '<packaging>pom</packaging><dependencies>'
  for a in $artifacts; do
    echo "<dependency><groupId>$group</groupId><artifactId>$a</artifactId><version>$version</version></dependency>"
  done
  echo '</dependencies></project>'
} >"$root.tmp/build/pom.xml"

if ! (cd "$root.tmp/build" && nice -n 10 mvn -q -B -Dstyle.color=never "$dep_plugin:copy-dependencies" \
        -DincludeScope=runtime -DoutputDirectory="$root.tmp/lib" >&2); then
  log "mvn could not resolve $group:{$artifacts}:$version from Maven Central"
  rm -rf "$root.tmp"
  if [ "$line" = 3 ]; then
    log "Nacos 3.x server cannot be assembled: the official server modules are not on Maven Central and the third-party republish could not be resolved"
    exit 3
  fi
  exit 1
fi
# Classpath in Maven's resolution order (what the official fat jar uses): with two
# Hessian jars (com.caucho 4.0.63 via nacos-consistency, com.alipay.sofa 3.3.6 via
# jraft-core) a random `lib/*` order can make naming fail with NoSuchMethodError.
if ! (cd "$root.tmp/build" && mvn -q -B -Dstyle.color=never "$dep_plugin:build-classpath" \
        -DincludeScope=runtime -Dmdep.prefix=LIBDIR \
        -Dmdep.outputFile="$root.tmp/classpath.txt" >&2); then
  log "mvn dependency:build-classpath failed"
  rm -rf "$root.tmp"; exit 1
fi

# 3.x: compile the start-up class into classes/ (put first on the classpath).
if [ -n "${launcher_src:-}" ]; then
  if ! command -v javac >/dev/null; then
    log "Nacos 3.x needs javac (a JDK) to compile $launcher_src: the official bootstrap module is not on Maven Central"
    rm -rf "$root.tmp"; exit 3
  fi
  mkdir -p "$root.tmp/classes"
  if ! javac -nowarn -d "$root.tmp/classes" -cp "$root.tmp/lib/*" "$launcher_src" >&2; then
    log "Nacos 3.x: compiling $launcher_src against $group:$version failed"
    rm -rf "$root.tmp"; exit 3
  fi
  cp "$launcher_src" "$root.tmp/classes/launcher.java"
  printf 'LIBDIR/../classes:' | cat - "$root.tmp/classpath.txt" >"$root.tmp/classpath.new"
  mv "$root.tmp/classpath.new" "$root.tmp/classpath.txt"
fi

# Sanity: the main class must be in one of the jars (checked when the JDK's `jar` exists).
if command -v jar >/dev/null; then
  main_path="${main//.//}.class"
  found=""
  [ -f "$root.tmp/classes/$main_path" ] && found="$root.tmp/classes/$main_path"
  for j in "$root.tmp/lib"/*.jar; do
    [ -n "$found" ] && break
    if jar tf "$j" | grep -x "$main_path" >/dev/null; then found="$j"; break; fi
  done
  if [ -z "$found" ]; then
    log "main class $main not found in the assembled jars"
    rm -rf "$root.tmp"
    [ "$line" = 3 ] && exit 3
    exit 1
  fi
fi

echo "$main" >"$root.tmp/main-class"
echo "$group:${artifacts// /,}:$version" >"$root.tmp/coords"
rm -rf "$root.tmp/build"
touch "$root.tmp/.complete"
rm -rf "$root"
mv "$root.tmp" "$root"
log "done: $(ls "$lib" | wc -l) jars, main class $main"
echo "$lib"
