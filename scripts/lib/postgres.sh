# shellcheck shell=bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 and exports DATABASE_URL.
#
# Order of attempts: it already answers; start the installed cluster with
# pg_ctlcluster; install Debian's postgresql and start it. A fresh Debian
# cluster does not trust TCP connections, so the postgres role then gets a
# password (a throwaway one: this is a test bed) and DATABASE_URL carries it.

pg_answers() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h 127.0.0.1 -p 5432 -t 2
  else
    (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
  fi
}

pg_start_installed_cluster() {
  command -v pg_ctlcluster >/dev/null 2>&1 || return 1
  local version
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  [ -n "$version" ] || return 1
  echo "postgres: starting cluster $version/main" >&2
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || return 1
}

pg_install() {
  echo "postgres: not installed; installing Debian's postgresql" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "postgres: need root to install PostgreSQL (or set DATABASE_URL to a running server)" >&2
    return 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

pg_wait() {
  local i
  for i in $(seq 1 60); do
    pg_answers && return 0
    sleep 0.5
  done
  return 1
}

ensure_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    echo "postgres: using DATABASE_URL from the environment" >&2
    return 0
  fi
  if ! pg_answers; then
    pg_start_installed_cluster || { pg_install && pg_start_installed_cluster; } || true
    pg_wait || { echo "postgres: nothing answers on 127.0.0.1:5432" >&2; return 1; }
  fi
  export DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
  if command -v psql >/dev/null 2>&1 && ! psql "$DATABASE_URL" -qtAc 'select 1' >/dev/null 2>&1; then
    # Not trusted over TCP (a fresh cluster): give the role a test-bed password.
    if [ "$(id -u)" -eq 0 ] && command -v runuser >/dev/null 2>&1; then
      runuser -u postgres -- psql -qc "ALTER ROLE postgres PASSWORD 'postgres'" >/dev/null
      export DATABASE_URL="postgres://postgres:postgres@127.0.0.1:5432/postgres"
    fi
    psql "$DATABASE_URL" -qtAc 'select 1' >/dev/null || {
      echo "postgres: 127.0.0.1:5432 answers but refuses user postgres" >&2
      return 1
    }
  fi
  echo "postgres: ready on 127.0.0.1:5432" >&2
}
