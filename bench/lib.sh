# Sourced by the benchmarks: a scratch directory cleaned up on exit, and a throw-away Dovecot (Debian
# dovecot-imapd) on an unprivileged loopback port, with its own base, state and mail directories; its
# system service is never started.

# bench_workdir NAME: sets $work to a fresh /tmp/postern-NAME-bench.* directory and $pids to an empty
# list; on exit every process in $pids is killed and the directory removed.
bench_workdir() {
    work=$(mktemp -d "/tmp/postern-$1-bench.XXXXXX")
    chmod 755 "$work"
    pids=()
    trap bench_cleanup EXIT
}

bench_cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}

# install_dovecot: installs dovecot-imapd if missing, without starting its service.
install_dovecot() {
    command -v dovecot >/dev/null && return
    echo "installing dovecot-imapd for the benchmark (its service is not started)" >&2
    local created_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; created_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null
    [ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    return 0
}

# dovecot_config DIR PORT: writes DIR/dovecot.conf (plaintext IMAP on 127.0.0.1:PORT, users from
# DIR/passwd, Maildir under DIR/mail) and creates its directories.
dovecot_config() {
    local d=$1 port=$2
    mkdir -p "$d/run" "$d/state" "$d/mail"
    chown nobody:nogroup "$d/mail"
    touch "$d/passwd"
    cat > "$d/dovecot.conf" <<CONF
protocols = imap
listen = 127.0.0.1
base_dir = $d/run
state_dir = $d/state
log_path = $d/log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:$d/mail/%u
first_valid_uid = 1
passdb {
  driver = passwd-file
  args = $d/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$d/mail/%u
}
service imap-login {
  inet_listener imap {
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
CONF
}

# postern_mx_config BINARY DIR DATABASE_URL: writes DIR/postern.toml for a Postern whose MX listens
# on a free loopback port (data in DIR/data) and adds the domain bench.test with the user
# bench@bench.test (password "password"). The inbound checks (SPF, DKIM, DMARC) ask Postern's own
# DNS, which serves the sender's zone with SPF and DMARC records: a stand-in for the local caching
# resolver a real MX has.
# The benchmark client on loopback may open up to 200 connections (the default per client is 30).
postern_mx_config() {
    local postern=$1 dir=$2 url=$3
    mkdir -p "$dir/data"
    local dns_port
    dns_port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    for zone in test remote.test; do
        cat > "$dir/$zone.zone" <<ZONE
\$ORIGIN $zone.
\$TTL 3600
@ IN SOA ns hostmaster 1 7200 900 1209600 300
  IN NS ns
ns IN A 127.0.0.1
ZONE
    done
    cat >> "$dir/remote.test.zone" <<'ZONE'
@ IN TXT "v=spf1 ip4:127.0.0.0/8 -all"
_dmarc IN TXT "v=DMARC1; p=reject"
ZONE
    cat > "$dir/postern.toml" <<TOML
data_dir = "$dir/data"
database_url = "$url"
log_level = "warn"
hostname = "mail.bench.test"
[listeners]
smtp = ["127.0.0.1:0"]
dns = ["127.0.0.1:$dns_port"]
[net]
max_connections_per_client = 200
[smtp]
resolver = "127.0.0.1:$dns_port"
[dns]
zones_dir = "$dir"
[[dns.view]]
name = "all"
match_clients = ["any"]
[[dns.view.zone]]
name = "test"
file = "test.zone"
[[dns.view.zone]]
name = "remote.test"
file = "remote.test.zone"
TOML
    "$postern" --config "$dir/postern.toml" domain add bench.test >/dev/null
    echo password | "$postern" --config "$dir/postern.toml" user add bench@bench.test >/dev/null
}
