#!/usr/bin/env bash
# Installs, updates, rolls back and removes p2p-edge on a Debian / Raspberry Pi OS gateway.
# Run as root. Every step can be re-run: what is already there is kept (a config, keys and
# certificates are never overwritten). docs/deploy.md is the manual.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: deploy/install.sh [install] [RELEASE] [OPTIONS]   install or update (the default command)
       deploy/install.sh rollback [OPTIONS]      switch back to the previous release and restart
       deploy/install.sh list [OPTIONS]          the installed releases; which is current and previous
       deploy/install.sh uninstall [--purge] [OPTIONS]

install: a release (`npm run release`: compiled JavaScript, no compiler needed) goes to
/opt/p2p-edge/releases/<version>-<hash> with its production dependencies (`npm ci --omit=dev`),
/opt/p2p-edge/current is switched to it atomically (the release it replaces becomes
/opt/p2p-edge/previous), and the service is restarted and checked (/healthz); a release that does
not come up is rolled back.

  RELEASE, --from PATH|URL
                         the release tarball (release/p2p-edge-<version>.tgz), a path or an
                         http(s) URL; or a source tree with a build in dist/ (`npm ci` made it),
                         packed as `npm pack` would (default: the tree this script belongs to)
  --config FILE          gateway config, installed as /etc/p2p-edge/gateway.yaml if there is none
                         (an existing one is never overwritten)
  --members FILE         the cell operator's signed members list, installed where the config's
                         comms.security.membersFile says (if none is there yet)
  --tls-ca FILE --tls-cert FILE --tls-key FILE
                         the MQTT client certificate (CN = gateway id) from the cell's CA, and the
                         CA certificate, installed where comms.mqtt.{caFile,certFile,keyFile} say
                         (default /etc/p2p-edge/tls/{ca.pem,client.pem,client.key})
  --tls-csr              no certificate yet: make the client key here and a certificate signing
                         request (client.csr, CN = gateway id) to send to the cell's CA
  --test-certs HOST      bench only: a test CA, a broker certificate for HOST and this gateway's
                         client certificate (deploy/mosquitto/make-certs.sh); the CA stays under
                         /etc/p2p-edge/tls/test-ca
  --keep N               releases to keep, current and previous included (default 3)
  --log-file             also write the log to /var/log/p2p-edge.log through rsyslog, rotated by
                         logrotate (the journal keeps it in any case)
  --journald-limits      also install deploy/journald/p2p-edge.conf, a drop-in that changes the
                         whole box's journal (persistent storage, size and age limits) and
                         restarts systemd-journald; without it the box's journal settings are kept
  --no-start             install and enable the service, but do not (re)start it
  --no-systemctl         no systemctl calls at all (images, containers, tests)
  --no-user              do not create the user and groups
  --root DIR             install into DIR as if it were / (images, tests); implies --no-user and
                         --no-systemctl
  --node-modules DIR     use this node_modules (symlinked) instead of installing them; it
                         must come from the same release and Node version (tests)
  --health-timeout S     how long an update may take to become healthy (default 120)
  --purge                uninstall: also remove /etc/p2p-edge, /var/lib/p2p-edge and the user
  -h, --help             this text

Exit codes: 0 ok, 1 failed (a failed update is rolled back), 2 bad usage or input.
Environment: P2P_EDGE_SYSTEMCTL, a command used instead of systemctl (also under --root; tests).
EOF
}

die() {
  echo "install.sh: $*" >&2
  exit "${EXIT:-1}"
}
usage_error() {
  echo "install.sh: $*" >&2
  echo "(run with --help for usage)" >&2
  exit 2
}
say() { echo "p2p-edge: $*" >&2; }

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command=install
case "${1:-}" in
install | rollback | list | uninstall)
  command=$1
  shift
  ;;
esac

from=$(dirname "$script_dir")
from_given=0 config='' members='' tls_ca='' tls_cert='' tls_key='' tls_csr=0 test_certs='' keep=3 log_file=0
journald_limits=0
no_start=0 no_systemctl=0 no_user=0 root='' node_modules='' purge=0 health_timeout=120
systemctl_cmd=${P2P_EDGE_SYSTEMCTL:-systemctl}
while [ "$#" -gt 0 ]; do
  case "$1" in
  -h | --help)
    usage
    exit 0
    ;;
  --from | --config | --members | --tls-ca | --tls-cert | --tls-key | --test-certs | --keep | --root | --node-modules | --health-timeout)
    [ "$#" -ge 2 ] || usage_error "$1 needs a value"
    case "$1" in
    --from) from=$2 from_given=1 ;;
    --config) config=$2 ;;
    --members) members=$2 ;;
    --tls-ca) tls_ca=$2 ;;
    --tls-cert) tls_cert=$2 ;;
    --tls-key) tls_key=$2 ;;
    --test-certs) test_certs=$2 ;;
    --keep) keep=$2 ;;
    --root) root=$2 ;;
    --node-modules) node_modules=$2 ;;
    --health-timeout) health_timeout=$2 ;;
    esac
    shift 2
    ;;
  --tls-csr) tls_csr=1 && shift ;;
  --build) say "--build is no longer needed: a release is compiled" && shift ;;
  --log-file) log_file=1 && shift ;;
  --journald-limits) journald_limits=1 && shift ;;
  --no-start) no_start=1 && shift ;;
  --no-systemctl) no_systemctl=1 && shift ;;
  --no-user) no_user=1 && shift ;;
  --purge) purge=1 && shift ;;
  -*) usage_error "unknown argument: $1" ;;
  *)
    [ "$from_given" = 0 ] || usage_error "one release only: $1"
    from=$1 from_given=1
    shift
    ;;
  esac
done

if ! [[ "$keep" =~ ^[0-9]+$ ]] || [ "$keep" -lt 2 ]; then
  usage_error "--keep must be a number >= 2 (current and previous)"
fi
[[ "$health_timeout" =~ ^[0-9]+$ ]] || usage_error "--health-timeout must be a number of seconds"
if [ -n "$root" ]; then
  mkdir -p "$root"
  root=$(cd "$root" && pwd)
  no_user=1
  [ -n "${P2P_EDGE_SYSTEMCTL:-}" ] || no_systemctl=1
elif [ "$(id -u)" -ne 0 ]; then
  die "run as root (sudo), or with --root DIR to install into a directory"
fi
for f in "$config" "$members" "$tls_ca" "$tls_cert" "$tls_key"; do
  [ -z "$f" ] || [ -f "$f" ] || EXIT=2 die "$f: no such file"
done
if [ -n "$tls_cert$tls_key$tls_ca" ] && { [ -z "$tls_cert" ] || [ -z "$tls_key" ] || [ -z "$tls_ca" ]; }; then
  usage_error "--tls-ca, --tls-cert and --tls-key go together"
fi

# Where things go (the unit file names the same paths).
base=$root/opt/p2p-edge
releases=$base/releases
etc=$root/etc/p2p-edge
state=$root/var/lib/p2p-edge
unit_dir=$root/etc/systemd/system
user=p2p-edge

have_user() { id "$user" >/dev/null 2>&1; }
# own OWNER:GROUP MODE PATH...: modes always, owners where the user exists (not in a --root tree).
own() {
  local owner=$1 mode=$2
  shift 2
  chmod "$mode" "$@"
  if have_user; then chown "$owner" "$@"; fi
}
systemctl_() {
  if [ "$no_systemctl" = 1 ]; then
    say "(skipped) systemctl $*"
  else
    "$systemctl_cmd" "$@"
  fi
}

check_node() {
  command -v node >/dev/null || die "Node.js is not installed. p2p-edge needs Node >= 20.10:
  Debian 13 / Raspberry Pi OS (trixie): apt-get install nodejs npm
  Debian 12 / Raspberry Pi OS (bookworm): its nodejs is 18; take Node 20 or 22 from NodeSource:
    https://github.com/nodesource/distributions (setup_22.x, then apt-get install nodejs)"
  local v
  v=$(node -p 'process.versions.node')
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=10)?0:1)' ||
    die "Node $v is too old: p2p-edge needs >= 20.10 (see docs/deploy.md, Requirements)"
}

# A command of the release being installed, e.g. `p2p_edge platform keygen ...`.
p2p_edge() { node "$rel_dir/bin/p2p-edge.mjs" "$@"; }

# Reads fields of the installed config with the release's own YAML parser: one `key=value` line each.
config_fields() {
  # shellcheck disable=SC2016 # JavaScript, not shell
  (cd "$rel_dir" && node --input-type=module -e '
    import { readFileSync } from "node:fs";
    import { parse } from "yaml";
    const c = parse(readFileSync(process.argv[1], "utf8")) ?? {};
    const f = {
      id: c.gateway?.id,
      keyFile: c.comms?.security?.keyFile,
      membersFile: c.comms?.security?.membersFile,
      caFile: c.comms?.mqtt?.caFile,
      certFile: c.comms?.mqtt?.certFile,
      tlsKeyFile: c.comms?.mqtt?.keyFile,
      statusHost: c.status?.host ?? "127.0.0.1",
      statusPort: c.status?.port ?? 8080,
      statusToken: c.status?.token,
      stateDir: c.stateDir,
    };
    for (const [k, v] of Object.entries(f)) if (v !== undefined && v !== null) console.log(`${k}=${v}`);
  ' "$etc/gateway.yaml")
}
field() { sed -n "s/^$1=//p" <<<"$fields" | head -n 1; }

setup_user() {
  if [ "$no_user" = 1 ]; then
    say "(skipped) user and groups"
    return
  fi
  getent group gpio >/dev/null || groupadd --system gpio
  if ! have_user; then
    useradd --system --user-group --home-dir /var/lib/p2p-edge --no-create-home \
      --shell /usr/sbin/nologin --comment "p2p-edge gateway" "$user"
    say "created system user $user"
  fi
  usermod -a -G dialout,gpio "$user"
}

# Unpacks the release into $releases/<version>-<hash> (kept if already complete); sets $release
# and $rel_dir.
unpack_release() {
  local tmp=$work_tmp tarball version hash shrinkwrap_from=''
  if [[ "$from" =~ ^https?:// ]]; then
    tarball=$tmp/release.tgz
    download "$from" "$tarball" || die "cannot download $from"
  elif [ -d "$from" ]; then
    [ -f "$from/package.json" ] || EXIT=2 die "$from: not a p2p-edge source tree (no package.json)"
    [ -f "$from/dist/main.js" ] || EXIT=2 die "$from: no build in dist/ (npm ci or npm run build there; or install a release from npm run release)"
    # The files of a release (package.json's `files`: dist/, no sources); no build here (--ignore-scripts).
    tarball=$(cd "$from" && npm pack --ignore-scripts --silent --pack-destination "$tmp" | tail -n 1)
    tarball=$tmp/$tarball
    # The versions the tree was tested with, as a release brings them.
    if [ -f "$from/package-lock.json" ]; then shrinkwrap_from=$from/package-lock.json; fi
  elif [ -f "$from" ]; then
    tarball=$from
  else
    EXIT=2 die "$from: no such file or directory"
  fi
  mkdir -p "$tmp/x"
  tar -xzf "$tarball" -C "$tmp/x"
  [ -f "$tmp/x/package/package.json" ] || EXIT=2 die "$from: not an npm package tarball"
  version=$(node -p 'require(process.argv[1]).version' "$tmp/x/package/package.json")
  hash=$(sha256sum "$tarball" | cut -c1-8)
  release=$version-$hash
  rel_dir=$releases/$release
  mkdir -p "$releases"
  if [ -f "$releases/$release/.complete" ]; then
    say "release $release is already installed"
    touch "$releases/$release/.complete"
    return
  fi
  rm -rf "${releases:?}/$release" "$releases/.$release.tmp"
  mv "$tmp/x/package" "$releases/.$release.tmp"
  if [ -n "$shrinkwrap_from" ] && [ ! -f "$releases/.$release.tmp/npm-shrinkwrap.json" ]; then
    cp "$shrinkwrap_from" "$releases/.$release.tmp/npm-shrinkwrap.json"
  fi
  # A package packed from a source tree still has the development scripts (`prepare` builds from
  # sources it does not have); a release from `npm run release` has none.
  (cd "$releases/.$release.tmp" && npm pkg delete scripts)
  install_dependencies "$releases/.$release.tmp"
  date -u +%Y-%m-%dT%H:%M:%SZ >"$releases/.$release.tmp/.complete"
  mv "$releases/.$release.tmp" "$releases/$release"
  chmod -R u=rwX,go=rX "$releases/$release"
  say "installed release $release"
}

install_dependencies() {
  local dir=$1
  if [ -n "$node_modules" ]; then
    ln -s "$(cd "$node_modules" && pwd)" "$dir/node_modules"
  elif [ -d "$dir/node_modules" ]; then
    say "the release brings its node_modules"
  else
    if ! command -v make >/dev/null || ! command -v g++ >/dev/null || ! command -v python3 >/dev/null; then
      say "no compiler (make, g++, python3): native modules without a prebuilt binary for $(node -p 'process.platform + "-" + process.arch') are left out (docs/deploy.md, Native modules)"
    fi
    # The release's own package.json approves the native modules' install scripts (allowScripts);
    # npm-shrinkwrap.json pins the tested versions. An optional module that fails to build is left out.
    local npm_install=(install)
    if [ -f "$dir/npm-shrinkwrap.json" ]; then npm_install=(ci); fi
    (cd "$dir" && npm "${npm_install[@]}" --omit=dev --no-audit --no-fund)
    native_modules "$dir"
  fi
}

# Says which optional native modules load in the release, and what is off without one.
native_modules() {
  # shellcheck disable=SC2016 # JavaScript, not shell
  (cd "$1" && node -e '
    const features = { "better-sqlite3": "the platform ledger", serialport: "Modbus RTU and the LTE modem",
      socketcan: "CAN", onoff: "GPIO" };
    for (const [name, feature] of Object.entries(features)) {
      let state = "loads";
      try { require(name); } catch (err) { state = `not available (${feature} off): ${String(err.message).split("\n")[0]}`; }
      console.error(`p2p-edge: native module ${name}: ${state}`);
    }')
}

# download URL FILE: with node (curl is not on every minimal image).
download() {
  # shellcheck disable=SC2016 # JavaScript, not shell
  node -e '
    const { writeFileSync } = require("node:fs");
    fetch(process.argv[1]).then(async (r) => {
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      writeFileSync(process.argv[2], Buffer.from(await r.arrayBuffer()));
    }).catch((err) => { console.error(`download: ${err.message}`); process.exit(1); });' "$1" "$2"
}

# switch_to RELEASE: `current` → RELEASE atomically (rename of a new symlink over the old one);
# what current pointed to becomes `previous`.
switch_to() {
  local target=$1 old=
  [ -L "$base/current" ] && old=$(readlink "$base/current")
  if [ "$old" = "releases/$target" ]; then
    say "current is already $target"
    return
  fi
  ln -sfn "releases/$target" "$base/.current.new"
  mv -T "$base/.current.new" "$base/current"
  if [ -n "$old" ]; then
    ln -sfn "$old" "$base/.previous.new"
    mv -T "$base/.previous.new" "$base/previous"
  fi
  say "current → $target${old:+ (previous → ${old#releases/})}"
}

# Complete releases, the most recently installed first (release names are [0-9A-Za-z.+-] only).
releases_newest_first() {
  [ -d "$releases" ] || return 0
  find "$releases" -mindepth 2 -maxdepth 2 -name .complete -printf '%T@ %h\n' | sort -rn | sed 's#^[^ ]* .*/##'
}

# Removes the oldest releases beyond --keep, never current or previous.
prune_releases() {
  local current previous count=0 r
  current=$(basename "$(readlink "$base/current" 2>/dev/null || echo none)")
  previous=$(basename "$(readlink "$base/previous" 2>/dev/null || echo none)")
  for r in $(releases_newest_first); do
    count=$((count + 1))
    if [ "$count" -gt "$keep" ] && [ "$r" != "$current" ] && [ "$r" != "$previous" ]; then
      rm -rf "${releases:?}/$r"
      say "removed old release $r"
    fi
  done
}

# The new release validates the config the service will read (the installed one, or --config for a
# first install) before anything is installed or switched.
check_config() {
  local file=$etc/gateway.yaml
  [ -f "$file" ] || file=$config
  [ -n "$file" ] || EXIT=2 die "no $etc/gateway.yaml yet: pass --config FILE (one of config/*.example.yaml, edited)"
  if ! p2p_edge run --config "$file" --check >/dev/null; then
    EXIT=2 die "release $release does not accept $file (see above): no config installed, nothing switched"
  fi
}

install_config() {
  mkdir -p "$etc"
  own root:$user 0750 "$etc"
  if [ -f "$etc/gateway.yaml" ]; then
    say "kept the existing $etc/gateway.yaml"
  elif [ -n "$config" ]; then
    install -m 0640 "$config" "$etc/gateway.yaml"
    own root:$user 0640 "$etc/gateway.yaml"
    say "installed $etc/gateway.yaml from $config"
  else
    EXIT=2 die "no $etc/gateway.yaml yet: pass --config FILE (one of config/*.example.yaml, edited)"
  fi
}

# put SOURCE DEST MODE: installs a file if DEST does not exist yet.
put() {
  local src=$1 dest=$2 mode=$3
  if [ -e "$dest" ]; then
    say "kept the existing $dest"
  else
    mkdir -p "$(dirname "$dest")"
    install -m "$mode" "$src" "$dest"
    own root:$user "$mode" "$dest"
    say "installed $dest"
  fi
}

provision() {
  local id key_file members_file ca cert tls_key_file
  fields=$(config_fields)
  id=$(field id)
  [[ "$id" =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$ ]] || EXIT=2 die "$etc/gateway.yaml: gateway.id is missing or not 1-64 of [A-Za-z0-9_-]"

  # The gateway's keys (Ed25519 to sign, X25519 that confidential messages are sealed to), made by the
  # release's own `platform keygen`: readable by the service's group, writable by nobody but root.
  key_file=$(field keyFile)
  if [ -n "$key_file" ]; then
    if [ -e "$root$key_file" ]; then
      say "kept the existing key file $root$key_file"
    else
      mkdir -p "$(dirname "$root$key_file")"
      local out
      out=$(p2p_edge platform keygen --id "$id" --out "$root$key_file")
      own root:$user 0640 "$root$key_file"
      say "made the keys $root$key_file; register its public keys (publicKey, encryptionKey) with the cell operator:"
      echo "$out"
    fi
  else
    say "the config has no comms.security.keyFile: no keys made (unsigned lab setup?)"
  fi

  members_file=$(field membersFile)
  if [ -n "$members" ]; then
    [ -n "$members_file" ] || EXIT=2 die "--members given, but the config has no comms.security.membersFile"
    put "$members" "$root$members_file" 0644
  fi

  # The MQTT client certificate (mTLS to the cell's Mosquitto, deploy/mosquitto).
  ca=$(field caFile)
  cert=$(field certFile)
  tls_key_file=$(field tlsKeyFile)
  ca=$root${ca:-/etc/p2p-edge/tls/ca.pem}
  cert=$root${cert:-/etc/p2p-edge/tls/client.pem}
  tls_key_file=$root${tls_key_file:-/etc/p2p-edge/tls/client.key}
  if [ -n "$tls_cert" ]; then
    put "$tls_ca" "$ca" 0644
    put "$tls_cert" "$cert" 0644
    put "$tls_key" "$tls_key_file" 0640
  elif [ -n "$test_certs" ]; then
    local ca_dir=$etc/tls/test-ca
    mkdir -p "$ca_dir"
    chmod 0700 "$ca_dir"
    if [ ! -f "$ca_dir/$id.pem" ]; then
      bash "$rel_dir/deploy/mosquitto/make-certs.sh" "$ca_dir" "$test_certs" "$id"
    fi
    put "$ca_dir/ca.pem" "$ca" 0644
    put "$ca_dir/$id.pem" "$cert" 0644
    put "$ca_dir/$id.key" "$tls_key_file" 0640
    say "test CA and broker certificate for $test_certs in $ca_dir (copy ca.pem, broker.pem, broker.key to the broker)"
  elif [ "$tls_csr" = 1 ]; then
    local csr=${tls_key_file%.key}.csr
    if [ -e "$tls_key_file" ]; then
      say "kept the existing TLS key $tls_key_file"
    else
      mkdir -p "$(dirname "$tls_key_file")"
      (umask 077 && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$id" \
        -keyout "$tls_key_file" -out "$csr" 2>/dev/null)
      own root:$user 0640 "$tls_key_file"
      chmod 0644 "$csr"
      say "made $tls_key_file and $csr: send the CSR to the cell's CA, then install the certificate as $cert (and the CA as $ca)"
    fi
  fi
}

install_system_files() {
  local rel=$rel_dir
  mkdir -p "$unit_dir" "$state"
  own $user:$user 0750 "$state"
  install -m 0644 "$rel/deploy/systemd/p2p-edge.service" "$unit_dir/p2p-edge.service"
  # The unit runs /usr/bin/node; a Node elsewhere (nvm, /usr/local) gets a drop-in.
  local node_bin
  node_bin=$(command -v node)
  if [ "$node_bin" != /usr/bin/node ]; then
    mkdir -p "$unit_dir/p2p-edge.service.d"
    { printf '[Service]\nExecStart=\n'; sed -n "s|^ExecStart=/usr/bin/node |ExecStart=$node_bin |p" "$rel/deploy/systemd/p2p-edge.service"; } \
      >"$unit_dir/p2p-edge.service.d/10-node.conf"
    say "node is $node_bin: drop-in $unit_dir/p2p-edge.service.d/10-node.conf"
  fi
  journald_changed=0
  # System-wide journal settings only when asked for (an existing drop-in is left as it is).
  if [ "$journald_limits" = 1 ] && ! cmp -s "$rel/deploy/journald/p2p-edge.conf" "$root/etc/systemd/journald.conf.d/p2p-edge.conf"; then
    mkdir -p "$root/etc/systemd/journald.conf.d"
    install -m 0644 "$rel/deploy/journald/p2p-edge.conf" "$root/etc/systemd/journald.conf.d/p2p-edge.conf"
    mkdir -p "$root/var/log/journal"
    journald_changed=1
  fi
  if [ "$log_file" = 1 ]; then
    mkdir -p "$root/etc/rsyslog.d" "$root/etc/logrotate.d"
    install -m 0644 "$rel/deploy/rsyslog/p2p-edge.conf" "$root/etc/rsyslog.d/30-p2p-edge.conf"
    install -m 0644 "$rel/deploy/logrotate/p2p-edge" "$root/etc/logrotate.d/p2p-edge"
    [ -n "$root" ] || command -v rsyslogd >/dev/null || say "rsyslog is not installed: apt-get install rsyslog (for --log-file)"
  fi
}

# Waits for the restarted service to be active and its /healthz to answer 200, three seconds in a row
# (a release that crashes right after READY=1 does not pass).
healthy() {
  local port host url ok=0
  port=$(field statusPort)
  host=$(field statusHost)
  if [ "$host" = 0.0.0.0 ] || [ "$host" = "::" ]; then host=127.0.0.1; fi
  url="http://$host:$port/healthz"
  local until=$((SECONDS + health_timeout))
  while [ "$SECONDS" -lt "$until" ]; do
    sleep 1
    # "activating" until READY=1; "activating (auto-restart)" after a crash.
    if "$systemctl_cmd" is-active --quiet p2p-edge && { [ "$port" = 0 ] || healthz "$url"; }; then
      ok=$((ok + 1))
      if [ "$ok" -ge 3 ]; then
        if [ "$port" = 0 ]; then say "healthy: p2p-edge is active"; else say "healthy: p2p-edge is active and $url says ok"; fi
        return 0
      fi
    else
      ok=0
    fi
  done
  return 1
}

# healthz URL: 200 from the status page (with the config's token, passed in the environment).
healthz() {
  # shellcheck disable=SC2016 # JavaScript, not shell
  P2P_TOKEN=$(field statusToken) node -e '
    const token = process.env.P2P_TOKEN;
    fetch(process.argv[1], token ? { headers: { authorization: `Bearer ${token}` } } : {})
      .then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1));' "$1"
}

restart_and_check() {
  systemctl_ daemon-reload
  if [ "$journald_changed" = 1 ]; then systemctl_ restart systemd-journald; fi
  systemctl_ enable p2p-edge
  if [ "$no_start" = 1 ] || [ "$no_systemctl" = 1 ]; then
    say "not (re)started: systemctl restart p2p-edge starts it"
    return
  fi
  if [ "$log_file" = 1 ] && command -v rsyslogd >/dev/null; then "$systemctl_cmd" restart rsyslog || true; fi
  "$systemctl_cmd" restart p2p-edge || say "systemctl restart p2p-edge failed"
  if healthy; then return; fi
  if [ -L "$base/previous" ]; then
    say "the new release did not come up healthy within $health_timeout s: rolling back"
    journalctl -u p2p-edge -n 30 --no-pager >&2 || true
    do_rollback
    die "update failed; rolled back to $(basename "$(readlink "$base/current")")"
  fi
  die "p2p-edge did not come up healthy: journalctl -u p2p-edge -n 50"
}

do_rollback() {
  [ -L "$base/previous" ] || die "no previous release to roll back to"
  local previous
  previous=$(basename "$(readlink "$base/previous")")
  [ -f "$releases/$previous/.complete" ] || die "the previous release $previous is incomplete or gone"
  switch_to "$previous"
  if [ "$no_systemctl" = 0 ] && [ "$no_start" = 0 ]; then "$systemctl_cmd" restart p2p-edge; fi
  say "rolled back to $previous"
}

lock() {
  mkdir -p "$base"
  if command -v flock >/dev/null; then
    exec 9>"$base/.lock"
    flock -n 9 || die "another install.sh is running"
  fi
}

case "$command" in
install)
  check_node
  lock
  work_tmp=$(mktemp -d)
  trap 'rm -rf "$work_tmp"' EXIT
  setup_user
  unpack_release
  check_config
  install_config
  provision
  install_system_files
  # Everything is in place: only now does the service see the new release.
  switch_to "$release"
  prune_releases
  restart_and_check
  say "done: $(basename "$(readlink "$base/current")") is current"
  ;;
rollback)
  lock
  do_rollback
  ;;
list)
  cur=$(basename "$(readlink "$base/current" 2>/dev/null || echo -)")
  prev=$(basename "$(readlink "$base/previous" 2>/dev/null || echo -)")
  for r in $(releases_newest_first); do
    mark=
    [ "$r" = "$cur" ] && mark=" (current)"
    [ "$r" = "$prev" ] && mark=" (previous)"
    echo "$r  $(cat "$releases/$r/.complete")$mark"
  done
  ;;
uninstall)
  systemctl_ disable --now p2p-edge || true
  rm -rf "$unit_dir/p2p-edge.service" "$unit_dir/p2p-edge.service.d" "$root/etc/systemd/journald.conf.d/p2p-edge.conf" \
    "$root/etc/rsyslog.d/30-p2p-edge.conf" "$root/etc/logrotate.d/p2p-edge" "$base"
  systemctl_ daemon-reload
  if [ "$purge" = 1 ]; then
    rm -rf "$etc" "$state"
    if [ "$no_user" = 0 ] && have_user; then userdel "$user"; fi
    say "removed, with config, keys, state and the user"
  else
    say "removed; kept $etc (config, keys, certificates) and $state (state, ledger): --purge removes them"
  fi
  ;;
esac
