/* progress.h - the terminal progress bar of `dsa-ingest import`. */
#ifndef DI_CLI_PROGRESS_H
#define DI_CLI_PROGRESS_H

#include "dsa_ingest/job.h"

typedef struct cli_progress {
    int tty;
    double last_draw;
    int drawn;
} cli_progress;

void cli_progress_init(cli_progress *p);
/* cli_progress_update is a di_progress_fn (ctx = the cli_progress). */
void cli_progress_update(void *ctx, const di_progress *pr);
/* cli_progress_done ends the bar's line. */
void cli_progress_done(cli_progress *p);

#endif
