/* main.c - the dsa-ingest command: dispatch to one file per subcommand. The
 * CLI is a thin layer over the library; it owns printing and exit codes. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: dsa-ingest COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  migrate                     create or update the DSA schema\n"
    "  import SOURCE --dataset D   import a file, http(s):// or s3:// object as a new commit\n"
    "  import --resume JOB_ID      continue a killed import from its checkpoint\n"
    "  scan SOURCE                 read SOURCE without a database: tables, columns, types, "
    "rows/s\n"
    "  worker [--concurrency N] [--listen ADDR:PORT] [--once]\n"
    "                              claim and run queued import jobs\n"
    "  serve [--listen ADDR:PORT] [--event-rules FILE]\n"
    "                              the import API, S3 event triggers and live progress\n"
    "  jobs list | show ID | cancel ID | retry ID\n"
    "                              inspect and steer import jobs\n"
    "\n"
    "Run `dsa-ingest COMMAND --help` for a command's options.\n";

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        puts("dsa-ingest 0.1.0");
        return 0;
    }
    if (strcmp(argv[1], "migrate") == 0)
        return cmd_migrate(argc - 1, argv + 1);
    if (strcmp(argv[1], "import") == 0)
        return cmd_import(argc - 1, argv + 1);
    if (strcmp(argv[1], "scan") == 0)
        return cmd_scan(argc - 1, argv + 1);
    if (strcmp(argv[1], "worker") == 0)
        return cmd_worker(argc - 1, argv + 1);
    if (strcmp(argv[1], "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(argv[1], "jobs") == 0)
        return cmd_jobs(argc - 1, argv + 1);
    fprintf(stderr, "dsa-ingest: unknown command \"%s\"\n\n%s", argv[1], usage);
    return EXIT_USAGE;
}
