/* cmd_jobs.c - `dsa-ingest jobs list | show ID | cancel ID | retry ID`. */
#include "cli/cli.h"
#include "dsa_ingest/job.h"
#include "dsa_ingest/sink.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char jobs_usage[] = "usage: dsa-ingest jobs list [--json] | show ID | cancel ID | "
                                 "retry ID  [--database URL]\n";

/* text reads a string member ("" when absent or null). */
static const char *text(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* print_table prints the job list for people. */
static void print_table(const char *json) {
    cJSON *a = cJSON_Parse(json);
    printf("%-36s  %-9s  %6s  %10s  %-3s  %s\n", "JOB", "STATUS", "PCT", "ROWS", "TRY",
           "SOURCE / ERROR");
    const cJSON *j;
    cJSON_ArrayForEach(j, a) {
        const cJSON *rp = cJSON_GetObjectItemCaseSensitive(j, "run_parameters");
        const cJSON *pr = cJSON_GetObjectItemCaseSensitive(rp, "progress");
        const cJSON *pct = cJSON_GetObjectItemCaseSensitive(pr, "percentage");
        const cJSON *rows = cJSON_GetObjectItemCaseSensitive(pr, "rows_processed");
        const cJSON *tries = cJSON_GetObjectItemCaseSensitive(j, "attempts");
        const char *err = text(j, "error_message");
        printf("%-36s  %-9s  %5.1f%%  %10.0f  %3.0f  %s%s%s\n", text(j, "id"), text(j, "status"),
               cJSON_IsNumber(pct) ? pct->valuedouble : 0.0,
               cJSON_IsNumber(rows) ? rows->valuedouble : 0.0,
               cJSON_IsNumber(tries) ? tries->valuedouble : 0.0, text(rp, "source"),
               *err ? "  — " : "", err);
    }
    cJSON_Delete(a);
}

/* run_action performs one jobs subcommand. */
static int run_action(const char *action, const char *id, int json, const char *conninfo,
                      di_error *err) {
    char *out = NULL;
    if (strcmp(action, "list") == 0 && (out = di_jobs_list(conninfo, 50, err)))
        json ? (void)puts(out) : print_table(out);
    else if (strcmp(action, "show") == 0 && id && (out = di_jobs_show(conninfo, id, err)))
        puts(out);
    else if (strcmp(action, "cancel") == 0 && id && di_jobs_cancel(conninfo, id, err) == 0)
        cli_log("job %s cancelled; its partial commit was removed", id);
    else if (strcmp(action, "retry") == 0 && id && di_jobs_retry(conninfo, id, err) == 0)
        cli_log("job %s queued again", id);
    else if (err->cls == DI_ERR_NONE)
        di_error_set(err, DI_ERR_CONFIG, "%s", jobs_usage);
    else {
        free(out);
        return -1;
    }
    int failed = err->cls != DI_ERR_NONE && !out;
    free(out);
    return failed ? -1 : 0;
}

int cmd_jobs(int argc, char **argv) {
    const char *action = NULL, *id = NULL, *database = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--database") == 0 && i + 1 < argc)
            database = argv[++i];
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(jobs_usage, stdout);
            return 0;
        } else if (!action)
            action = argv[i];
        else if (!id)
            id = argv[i];
        else {
            fputs(jobs_usage, stderr);
            return EXIT_USAGE;
        }
    }
    if (!action) {
        fputs(jobs_usage, stderr);
        return EXIT_USAGE;
    }
    di_error err;
    di_error_clear(&err);
    int embedded = 0;
    const char *conninfo = cli_database(database, &embedded, &err);
    if (!conninfo || run_action(action, id, json, conninfo, &err))
        return cli_fail(&err, NULL);
    return 0;
}
