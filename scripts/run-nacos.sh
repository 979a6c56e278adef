#!/usr/bin/env bash
# Runs a standalone Nacos server (assembled by install-nacos.sh) in the foreground.
#
#   scripts/run-nacos.sh LIBDIR PORT HOMEDIR [CONSOLE_PORT]
#
# LIBDIR   the path printed by scripts/install-nacos.sh 2|3
# PORT     HTTP port on 127.0.0.1 (API under http://127.0.0.1:PORT/nacos/)
# HOMEDIR  nacos.home: data (embedded Derby, naming snapshots) and logs/ go there;
#          use a fresh temp dir per test run. Created if missing.
#
# Ports used (a harness must pick PORT so that all are free):
#   PORT        HTTP API (2.x: also the console UI), bound to 127.0.0.1
#   PORT+1000   gRPC client port (SDKs 2.x/3.x), bound on all interfaces
#   PORT+1001   gRPC cluster port, bound even in standalone, all interfaces
#   PORT-1000   JRaft port: bound even in standalone mode (on all interfaces)
#   CONSOLE_PORT  3.x only: the web console (UI + /v3/console/*), started only when
#               given (arg 4 or NACOS_CONSOLE_PORT). Without it 3.x runs with
#               nacos.deployment.type=server (API only). 2.x serves its console on PORT.
#
# Environment:
#   NACOS_AUTH=on            enable auth. 2.x: user nacos / password nacos exists.
#                            3.x: no user; set it once after readiness with
#                            POST /nacos/v3/auth/user/admin  password=...  (see
#                            NACOS-SERVERS.md). Logins may fail for up to ~15 s after
#                            start / after setting the password (user cache): retry.
#   NACOS_AUTH_TOKEN         base64 secret of >= 32 bytes for JWT (a fixed test key default)
#   NACOS_AUTH_IDENTITY_KEY / NACOS_AUTH_IDENTITY_VALUE  server identity (default erpc/erpc)
#   NACOS_JAVA_OPTS          extra JVM options (appended last, so they win)
#   JAVA                     java binary (default: java on PATH)
#
# Readiness (HTTP 200 when up):
#   2.x: GET http://127.0.0.1:PORT/nacos/v1/console/health/readiness  -> OK
#   3.x: GET http://127.0.0.1:PORT/nacos/v3/admin/core/state/readiness
#        -> {"code":0,"message":"success","data":"ok"}   (v1 console URLs are 404 on 3.x)
# Both stay open with auth on. Typical: 2.x ready 6-9 s, 3.x 11-12 s after exec.
# It execs java, so the caller's PID is the JVM's PID; SIGTERM stops it in ~1-3 s.
set -euo pipefail

if [ $# -lt 3 ]; then
  echo "usage: $0 LIBDIR PORT HOMEDIR [CONSOLE_PORT]" >&2
  exit 2
fi
lib="$(cd "$1" && pwd)"
port="$2"
home="$3"
console_port="${4:-${NACOS_CONSOLE_PORT:-}}"
mkdir -p "$home"
home="$(cd "$home" && pwd)"

main="com.alibaba.nacos.Nacos"
if [ -f "$lib/../main-class" ]; then main="$(cat "$lib/../main-class")"; fi
line=2
if ls "$lib"/nacos-core-3.*.jar >/dev/null 2>&1; then line=3; fi

auth=false
case "${NACOS_AUTH:-off}" in on|true|1|yes) auth=true ;; esac
# The JWT secret must be base64 of at least 32 bytes; the identity pair is required by
# 2.2+/3.x whenever auth is on (and the 3.x docker image wants all three even when off).
token="${NACOS_AUTH_TOKEN:-ZXJwYy1uYWNvcy10ZXN0LXNlY3JldC1rZXktMDEyMzQ1Njc4OQ==}"
idkey="${NACOS_AUTH_IDENTITY_KEY:-erpc}"
idval="${NACOS_AUTH_IDENTITY_VALUE:-erpc}"

opts=(
  -Xms256m -Xmx512m -XX:MaxMetaspaceSize=256m -Xss512k
  -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:ActiveProcessorCount=2
  -Djava.io.tmpdir="$home"
  -Dnacos.standalone=true
  -Dnacos.home="$home"
  -Dspring.config.additional-location="file:$home/conf/"
  -Dnacos.logs.path="$home/logs"
  -DJM.LOG.PATH="$home/logs"
  -DJM.SNAPSHOT.PATH="$home"
  -Dnacos.inetutils.ip-address=127.0.0.1
  -Dnacos.server.ip=127.0.0.1
  -Dnacos.preferHostnameOverIp=false
  -Dserver.address=127.0.0.1
  -Dserver.tomcat.basedir="$home/tomcat"
  -Dserver.tomcat.accesslog.enabled=false
  -Dspring.datasource.platform=derby
  -Dspring.sql.init.platform=derby
  -Dnacos.core.auth.enabled="$auth"
  -Dnacos.core.auth.system.type=nacos
  -Dnacos.core.auth.plugin.nacos.token.secret.key="$token"
  -Dnacos.core.auth.server.identity.key="$idkey"
  -Dnacos.core.auth.server.identity.value="$idval"
  -Dnacos.istio.mcp.server.enabled=false
  -Dnacos.k8s.sync.enabled=false
)
if [ "$line" = 2 ]; then
  opts+=(
    -Dserver.port="$port"
    -Dserver.servlet.contextPath=/nacos
  )
else
  # 3.x runs separate Spring web contexts, each with its own server.port taken from
  # these (a global -Dserver.port would make them collide).
  opts+=(
    -Dnacos.server.main.port="$port"
    -Dnacos.server.contextPath=/nacos
    -Dnacos.core.auth.admin.enabled="$auth"
    -Dnacos.core.auth.console.enabled="$auth"
  )
  if [ -n "$console_port" ]; then
    opts+=(-Dnacos.deployment.type=merged -Dnacos.console.port="$console_port"
      -Dnacos.console.contextPath=)
  else
    opts+=(-Dnacos.deployment.type=server)
  fi
fi
# Nacos 3.x reads ${nacos.home}/conf/application.properties (else a classpath
# application.properties that only the unpublished bootstrap jar has) and fails at start
# without one: write the defaults the official distribution ships (system properties
# above still win).
if [ ! -f "$home/conf/application.properties" ]; then
  mkdir -p "$home/conf"
  cat >"$home/conf/application.properties" <<'PROPS'
# written by erpc scripts/run-nacos.sh (standalone test server)
nacos.server.main.port=8848
nacos.server.contextPath=/nacos
nacos.console.port=8080
nacos.console.contextPath=
nacos.console.remote.server.context-path=/nacos
nacos.config.push.maxRetryTime=50
nacos.naming.empty-service.auto-clean=true
nacos.naming.empty-service.clean.initial-delay-ms=50000
nacos.naming.empty-service.clean.period-time-ms=30000
management.elastic.metrics.export.enabled=false
management.influx.metrics.export.enabled=false
server.error.include-message=ALWAYS
nacos.security.ignore.urls=/,/error,/**/*.css,/**/*.js,/**/*.html,/**/*.map,/**/*.svg,/**/*.png,/**/*.ico,/console-ui/public/**,/v1/auth/**,/v1/console/health/**,/actuator/**,/v1/console/server/**
nacos.core.auth.system.type=nacos
nacos.core.auth.enabled=false
nacos.core.auth.admin.enabled=false
nacos.core.auth.console.enabled=false
nacos.core.auth.caching.enabled=true
nacos.core.auth.plugin.nacos.token.cache.enable=false
nacos.core.auth.plugin.nacos.token.expire.seconds=18000
nacos.istio.mcp.server.enabled=false
nacos.k8s.sync.enabled=false
PROPS
fi

# shellcheck disable=SC2206
extra=(${NACOS_JAVA_OPTS:-})

# Classpath in Maven order (classpath.txt from install-nacos.sh); `lib/*` order is random
# and two Hessian versions are on it.
cp="$lib/*"
if [ -f "$lib/../classpath.txt" ]; then
  cp="$(sed "s#LIBDIR#$lib#g" "$lib/../classpath.txt")"
fi

cd "$home"
exec "${JAVA:-java}" "${opts[@]}" "${extra[@]}" -cp "$cp" "$main"
