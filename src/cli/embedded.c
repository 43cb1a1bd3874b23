/* embedded.c - the zero-configuration database: with no DATABASE_URL, a
 * PostgreSQL cluster under $DSA_INGEST_HOME made by initdb from Debian's
 * postgresql packages, started on demand on a private Unix socket (no TCP
 * port), and reused by every later run. As root, the server runs as the
 * `postgres` user, since PostgreSQL refuses to run as root. */
#include "cli/cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define EMBEDDED_PORT "5432"

typedef struct cluster {
    char home[512], data[600], sock[600], log[600], bindir[256];
    struct passwd *owner; /* the server's user when we are root, else NULL */
} cluster;

/* default_home picks $DSA_INGEST_HOME, else a per-user data directory; root's
 * home is not reachable by the postgres user, so root uses /var/lib. */
static void default_home(char *out, size_t outsz) {
    const char *h = getenv("DSA_INGEST_HOME");
    const char *xdg = getenv("XDG_DATA_HOME");
    if (h && *h)
        snprintf(out, outsz, "%s", h);
    else if (geteuid() == 0)
        snprintf(out, outsz, "/var/lib/dsa-ingest");
    else if (xdg && *xdg)
        snprintf(out, outsz, "%s/dsa-ingest", xdg);
    else
        snprintf(out, outsz, "%s/.local/share/dsa-ingest", getenv("HOME") ? getenv("HOME") : ".");
}

/* find_bindir picks the newest /usr/lib/postgresql/<major>/bin with a pg_ctl. */
static int find_bindir(cluster *c, di_error *err) {
    DIR *d = opendir("/usr/lib/postgresql");
    long best = -1;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char *end;
        long v = strtol(e->d_name, &end, 10);
        char probe[512];
        snprintf(probe, sizeof probe, "/usr/lib/postgresql/%s/bin/pg_ctl", e->d_name);
        if (*end == '\0' && v > best && access(probe, X_OK) == 0) {
            best = v;
            snprintf(c->bindir, sizeof c->bindir, "/usr/lib/postgresql/%s/bin", e->d_name);
        }
    }
    if (d)
        closedir(d);
    if (best < 0)
        return di_error_set(err, DI_ERR_CONFIG,
                            "no database configured and no PostgreSQL server found: set "
                            "DATABASE_URL, or install Debian's postgresql package for the "
                            "embedded database");
    return 0;
}

/* mkdir_owned makes a directory (if missing) owned by the server's user. */
static int mkdir_owned(const cluster *c, const char *path, mode_t mode, di_error *err) {
    if (mkdir(path, mode) != 0 && errno != EEXIST)
        return di_error_set(err, DI_ERR_CONFIG, "cannot create %s: %s", path, strerror(errno));
    if (c->owner && chown(path, c->owner->pw_uid, c->owner->pw_gid) != 0)
        return di_error_set(err, DI_ERR_CONFIG, "cannot chown %s: %s", path, strerror(errno));
    return 0;
}

/* run_tool runs a PostgreSQL program as the server's user, its output to the log. */
static int run_tool(const cluster *c, char *const argv[], di_error *err) {
    pid_t pid = fork();
    if (pid < 0)
        return di_error_set(err, DI_ERR_INTERNAL, "fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(c->log, O_WRONLY | O_APPEND | O_CREAT, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (c->owner &&
            (setgroups(0, NULL) || setgid(c->owner->pw_gid) || setuid(c->owner->pw_uid)))
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return di_error_set(err, DI_ERR_CONFIG, "%s failed (exit %d): see %s", argv[0],
                            WIFEXITED(st) ? WEXITSTATUS(st) : -1, c->log);
    return 0;
}

/* init_cluster runs initdb once. */
static int init_cluster(const cluster *c, di_error *err) {
    char pgv[700], initdb[300];
    snprintf(pgv, sizeof pgv, "%s/PG_VERSION", c->data);
    if (access(pgv, F_OK) == 0)
        return 0;
    snprintf(initdb, sizeof initdb, "%s/initdb", c->bindir);
    char *argv[] = {initdb,  "-D", (char *)c->data, "-U",         "postgres", "-A",
                    "trust", "-E", "UTF8",          "--locale=C", NULL};
    if (mkdir_owned(c, c->data, 0700, err))
        return -1;
    return run_tool(c, argv, err);
}

/* conninfo_of builds the libpq connection string for the private socket. */
static void conninfo_of(const cluster *c, char *out, size_t outsz) {
    snprintf(out, outsz, "host=%s port=" EMBEDDED_PORT " user=postgres dbname=postgres", c->sock);
}

/* start_cluster starts the server unless it already answers. */
static int start_cluster(const cluster *c, const char *conninfo, di_error *err) {
    if (PQping(conninfo) == PQPING_OK)
        return 0;
    char pg_ctl[300], opts[800];
    snprintf(pg_ctl, sizeof pg_ctl, "%s/pg_ctl", c->bindir);
    snprintf(opts, sizeof opts, "-c listen_addresses='' -k %s -p " EMBEDDED_PORT, c->sock);
    char *argv[] = {pg_ctl,          "start", "-w",           "-t", "120", "-D",
                    (char *)c->data, "-l",    (char *)c->log, "-o", opts,  NULL};
    return run_tool(c, argv, err);
}

/* setup prepares the directories and the server's user. */
static int setup(cluster *c, di_error *err) {
    default_home(c->home, sizeof c->home);
    snprintf(c->data, sizeof c->data, "%s/pgdata", c->home);
    snprintf(c->sock, sizeof c->sock, "%s/run", c->home);
    snprintf(c->log, sizeof c->log, "%s/postgres.log", c->home);
    c->owner = NULL;
    if (geteuid() == 0 && !(c->owner = getpwnam("postgres")))
        return di_error_set(err, DI_ERR_CONFIG,
                            "running as root needs the `postgres` user for the embedded database");
    if (find_bindir(c, err))
        return -1;
    if (mkdir(c->home, 0755) != 0 && errno != EEXIST)
        return di_error_set(err, DI_ERR_CONFIG, "cannot create %s: %s", c->home, strerror(errno));
    if (mkdir_owned(c, c->home, 0755, err) || mkdir_owned(c, c->sock, 0755, err))
        return -1;
    int fd = open(c->log, O_WRONLY | O_APPEND | O_CREAT, 0600);
    if (fd >= 0 && c->owner && fchown(fd, c->owner->pw_uid, c->owner->pw_gid) != 0) {
        /* the server then cannot write its log: pg_ctl will say so */
    }
    if (fd >= 0)
        close(fd);
    return 0;
}

const char *cli_embedded_start(di_error *err) {
    static char conninfo[800];
    cluster c;
    if (setup(&c, err))
        return NULL;
    char lockpath[600];
    snprintf(lockpath, sizeof lockpath, "%s/lock", c.home);
    int lock = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600); /* not for the server */
    if (lock < 0 || flock(lock, LOCK_EX) != 0) {
        di_error_set(err, DI_ERR_CONFIG, "cannot lock %s: %s", lockpath, strerror(errno));
        if (lock >= 0)
            close(lock);
        return NULL;
    }
    conninfo_of(&c, conninfo, sizeof conninfo);
    int rc = init_cluster(&c, err) || start_cluster(&c, conninfo, err);
    close(lock);
    return rc ? NULL : conninfo;
}

const char *cli_database(const char *flag, int *embedded, di_error *err) {
    static const char *const pgvars[] = {"PGHOST",     "PGHOSTADDR", "PGPORT",
                                         "PGDATABASE", "PGUSER",     "PGSERVICE"};
    *embedded = 0;
    if (flag && *flag)
        return flag;
    const char *url = getenv("DATABASE_URL");
    if (url && *url)
        return url;
    for (size_t i = 0; i < sizeof pgvars / sizeof pgvars[0]; i++)
        if (getenv(pgvars[i]) && *getenv(pgvars[i]))
            return ""; /* libpq reads its own variables */
    *embedded = 1;
    return cli_embedded_start(err);
}
