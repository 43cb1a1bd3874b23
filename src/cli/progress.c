/* progress.c - the live progress bar on a terminal: bytes, rows/s, ETA.
 * Redrawn at most ten times a second, on stderr, only when it is a tty and
 * the log lines there are text (JSON lines must stay one object per line). */
#include "cli/progress.h"
#include "cli/cli.h"

#include <stdio.h>
#include <unistd.h>

/* human writes a byte count with a binary unit. */
static void human(double b, char *out, size_t outsz) {
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        u++;
    }
    snprintf(out, outsz, u ? "%.1f %s" : "%.0f %s", b, units[u]);
}

void cli_progress_init(cli_progress *p) {
    p->tty = isatty(2) && !cli_log_json();
    p->last_draw = -1;
    p->drawn = 0;
}

void cli_progress_update(void *ctx, const di_progress *pr) {
    cli_progress *p = ctx;
    if (!p->tty || (pr->elapsed_s - p->last_draw < 0.1 && p->last_draw >= 0))
        return;
    p->last_draw = pr->elapsed_s;
    char done[32], total[32] = "?";
    human((double)pr->bytes_read, done, sizeof done);
    double frac = pr->bytes_total > 0 ? (double)pr->bytes_read / (double)pr->bytes_total : 0;
    if (pr->bytes_total > 0)
        human((double)pr->bytes_total, total, sizeof total);
    char bar[31];
    int fill = (int)(frac * 30);
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    double rate = pr->elapsed_s > 0 ? (double)pr->rows / pr->elapsed_s : 0;
    double eta = frac > 0.001 ? pr->elapsed_s * (1 - frac) / frac : -1;
    char etas[32] = "--:--";
    if (eta >= 0)
        snprintf(etas, sizeof etas, "%d:%02d", (int)eta / 60, (int)eta % 60);
    fprintf(stderr, "\r[%s] %5.1f%%  %s / %s  %lld rows  %.0f rows/s  ETA %s ", bar, frac * 100,
            done, total, (long long)pr->rows, rate, etas);
    p->drawn = 1;
}

void cli_progress_done(cli_progress *p) {
    if (p->drawn)
        fputc('\n', stderr);
    p->drawn = 0;
}
