/* migrations.h - the numbered files of sql/, embedded at build time. */
#ifndef DI_SINK_MIGRATIONS_H
#define DI_SINK_MIGRATIONS_H

struct di_migration {
    int version;
    const char *name;
    const char *sql;
};
extern const struct di_migration di_migrations[];
extern const int di_migrations_count;

#endif
