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
