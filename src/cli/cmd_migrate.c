/* cmd_migrate.c - `dsa-ingest migrate`: apply the embedded schema migrations. */
#include "cli/cli.h"
#include "dsa_ingest/sink.h"

#include <getopt.h>
#include <stdio.h>

int cmd_migrate(int argc, char **argv) {
    static const struct option opts[] = {{"database", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *database = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
        if (c == 'd')
            database = optarg;
        else {
            fputs("usage: dsa-ingest migrate [--database URL]\n", c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : EXIT_USAGE;
        }
    }
    di_error err;
    di_error_clear(&err);
    int embedded = 0, applied = 0;
    const char *conninfo = cli_database(database, &embedded, &err);
    if (!conninfo || di_migrate(conninfo, &applied, &err))
        return cli_fail(&err, NULL);
    cli_log("schema at version %d (%d migration%s applied now)", di_migrate_latest(), applied,
            applied == 1 ? "" : "s");
    return 0;
}
